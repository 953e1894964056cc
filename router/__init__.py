"""pipeline-alert-router: pages the right data engineer when a pipeline breaks."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
