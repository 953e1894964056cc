"""What a server process tree uses, from Linux `/proc`: the router counts with its delivery
worker processes. Shared by the benchmark drivers (imported from the script's folder)."""

from __future__ import annotations

__all__ = ["cpu_seconds", "memory_kib", "own_cpu_seconds", "process_tree"]

import os
from pathlib import Path


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants alive now (the router's delivery workers)."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        children = Path(f"/proc/{current}/task/{current}/children")
        try:
            pending += [int(child) for child in children.read_text().split()]
        except OSError:
            continue
    return found


def own_cpu_seconds(pid: int) -> float:
    """User + system CPU time so far of one process (all its threads, not its children)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime, stime


def cpu_seconds(pid: int) -> float:
    """User + system CPU time so far of a process, all its threads and its live descendants
    (a router's delivery worker processes count as the router)."""
    return sum(own_cpu_seconds(p) for p in process_tree(pid))


def memory_kib(pid: int) -> dict[str, int]:
    """`VmHWM` (peak resident set) and `VmRSS` in KiB, summed over the process and its live
    descendants: the sum of their peaks, an upper bound of their peak together."""
    found: dict[str, int] = {"VmHWM": 0, "VmRSS": 0}
    for member in process_tree(pid):
        try:
            lines = Path(f"/proc/{member}/status").read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            name, _, value = line.partition(":")
            if name in found:
                found[name] += int(value.split()[0])
    return found
