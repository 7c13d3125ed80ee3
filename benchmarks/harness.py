"""Time whole processes: median of N runs after a warm-up, and peak memory of the process tree.

Memory is sampled every 20 ms as the sum of the resident set sizes of the
process and all its children, so a contender that forks workers is charged
for them too.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil


@dataclass
class Measurement:
    name: str
    seconds: list[float]
    peak_mb: list[float]
    failed: str | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.seconds) if self.seconds else float("nan")

    @property
    def peak(self) -> float:
        return max(self.peak_mb) if self.peak_mb else float("nan")


def run_once(command: list[str], timeout: float) -> tuple[float, float]:
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    parent = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        try:
            rss = parent.memory_info().rss + sum(c.memory_info().rss for c in parent.children(recursive=True))
            peak = max(peak, rss)
        except psutil.Error:
            pass
        if time.perf_counter() - start > timeout:
            proc.kill()
            raise TimeoutError(f"over {timeout:.0f} s")
        time.sleep(0.02)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.read().decode()[-2000:] if proc.stderr else f"exit {proc.returncode}")
    return elapsed, peak / 2**20


def measure_all(
    contenders: list[tuple[str, list[str]]],
    runs: int = 3,
    warmup: int = 1,
    timeout: float = 1800,
    outputs: dict[str, list[Path]] | None = None,
) -> list[Measurement]:
    """Run the contenders in turn, A B C A B C ..., so drift in the machine's speed hits all alike.

    ``outputs`` names the files each contender writes; they are deleted before each of its runs, so a
    comparison afterwards never reads what an earlier run (or an earlier benchmark) left behind.
    """
    results = [Measurement(name, [], []) for name, _ in contenders]
    for i in range(warmup + runs):
        label = "warm-up" if i < warmup else f"run {i - warmup + 1}"
        for result, (name, command) in zip(results, contenders, strict=True):
            if result.failed:
                continue
            for path in (outputs or {}).get(name, []):
                path.unlink(missing_ok=True)
            try:
                seconds, peak = run_once(command, timeout)
            except (TimeoutError, RuntimeError) as exc:
                result.failed = str(exc)
                print(f"  {name}: FAILED {exc}", file=sys.stderr, flush=True)
                continue
            print(f"  {name:<28} {label:<8} {seconds:8.2f} s  {peak:8.0f} MB", flush=True)
            if i >= warmup:
                result.seconds.append(seconds)
                result.peak_mb.append(peak)
    return results
