"""Paging: rendering messages and the channels that send them (email, webhook)."""
