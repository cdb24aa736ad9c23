"""The machine's float32 GEMM rate: the unit printed beside every timing of the benchmarks."""

from __future__ import annotations

import statistics
import time

import torch


def gemm_gflops(device: torch.device | str = "cpu", n: int = 2048, reps: int = 5) -> float:
    """GFLOP/s of an n × n float32 matrix product on `device`: the median of `reps` timed products."""
    device = torch.device(device)
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    a @ b
    times = []
    for _ in range(reps):
        synchronise(device)
        start = time.perf_counter()
        a @ b
        synchronise(device)
        times.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(times) / 1e9


def synchronise(device: torch.device) -> None:
    """Wait for `device`'s queued work (CUDA runs asynchronously), so a clock read after it is honest."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
