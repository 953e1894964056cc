"""`--router-env KEY=VALUE`, shared by the benchmarks that start routers."""

from __future__ import annotations

import argparse


def router_setting(text: str) -> tuple[str, str]:
    """`ROUTER_X=1` → ("ROUTER_X", "1"); anything else is a usage error, not a silent no-op."""
    key, equals, value = text.partition("=")
    if not equals or not key.startswith("ROUTER_"):
        raise argparse.ArgumentTypeError(f"expected ROUTER_<NAME>=<value>, got {text!r}")
    return key, value
