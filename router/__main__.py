"""`python -m router` is the `router` command."""

import sys

from router.cli import main

# Guarded: a delivery worker process (multiprocessing, spawn) imports this module again.
if __name__ == "__main__":
    sys.exit(main())
