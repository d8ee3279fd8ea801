"""Helpers shared by the benchmark scripts: time a fresh process, best of n."""

from __future__ import annotations

import subprocess
import sys
import time


def time_process(code_or_args: str | list[str], repeat: int = 5) -> float:
    """Best wall time of a fresh Python process (imports included), in seconds."""
    args = code_or_args if isinstance(code_or_args, list) else [sys.executable, "-c", code_or_args]
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
        best = min(best, time.perf_counter() - start)
    return best
