"""Timing and peak memory of a command, shared by the benchmark scripts.

from measure import measure
seconds, peak_bytes = measure(["python", "-m", "pmc_data", ...], cwd=ROOT, log=Path("x.log"))
"""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
import time
from pathlib import Path

import psutil


def measure(command: list[str], cwd: Path, log: Path | None = None) -> tuple[float, int]:
    """Wall seconds and peak RSS bytes (the whole process tree, sampled every 20 ms).

    Output goes to ``log`` (a temporary file if none), not a pipe: a tool that logs a lot
    would fill a pipe nobody reads yet and block.
    """
    if log is None:
        log = Path(tempfile.mkstemp(prefix="bench-", suffix=".log")[1])
    started = time.perf_counter()
    with open(log, "wb") as output:
        process = subprocess.Popen(command, cwd=cwd, stdout=output, stderr=subprocess.STDOUT)
        root = psutil.Process(process.pid)
        peak = 0
        while process.poll() is None:
            total = 0
            try:
                tree = [root, *root.children(recursive=True)]
            except psutil.Error:
                tree = []
            for proc in tree:
                with contextlib.suppress(psutil.Error):  # exited between listing and sampling
                    total += proc.memory_info().rss
            peak = max(peak, total)
            time.sleep(0.02)
    seconds = time.perf_counter() - started
    if process.returncode:
        tail = log.read_text(encoding="utf-8", errors="replace")[-3000:]
        raise RuntimeError(f"{' '.join(command[:6])} ... exited {process.returncode}:\n{tail}")
    return seconds, peak
