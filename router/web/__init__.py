"""The HTTP edge: thin aiohttp handlers that translate HTTP to domain calls and back."""
