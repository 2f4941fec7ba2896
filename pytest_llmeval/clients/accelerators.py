"""Where a local model runs: the device, one GPU per pytest-xdist worker, CPU threads, and
out-of-memory backoff.

The N-th worker on a host takes the N-th device of that host's ``CUDA_VISIBLE_DEVICES`` (or of
all devices the driver reports), cycling when there are more workers than GPUs (N is the
worker's slot on its own host, :mod:`pytest_llmeval.hosts`; ``gwN``'s N when all are local); this is decided
before torch initialises CUDA, and without importing torch where no GPU driver exists, so a
cached run stays light.
"""

from __future__ import annotations

import functools
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from pytest_llmeval.hosts import local_slot, local_workers

log = logging.getLogger("pytest_llmeval.models")

T = TypeVar("T")


def visible_devices() -> list[str]:
    """The devices this process may use, without initialising CUDA."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [d.strip() for d in listed.split(",") if d.strip() and d.strip() != "-1"]
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [str(i) for i, line in enumerate(out.stdout.splitlines()) if line.startswith("GPU ")]


def pin_worker_gpu(worker: str | None = None) -> str | None:
    """Restrict an xdist worker (this one, or the local worker named) to one GPU; returns the
    device chosen, or None."""
    named = worker is not None
    worker = worker or os.environ.get("PYTEST_XDIST_WORKER")
    if not worker or not worker.startswith("gw"):
        return None
    # a named worker is a local one (its number is its slot); this process uses its host slot
    slot = (int(worker[2:]) if worker[2:].isdigit() else None) if named else local_slot(worker)
    devices = visible_devices()
    if slot is None or not devices:
        return None
    chosen = devices[slot % len(devices)]
    os.environ["CUDA_VISIBLE_DEVICES"] = chosen
    return chosen


def gpu_driver_present() -> bool:
    """False only where no GPU can be in use: Linux with neither an NVIDIA nor a ROCm driver."""
    if sys.platform != "linux":
        return True
    return any(Path(p).exists() for p in ("/proc/driver/nvidia/version", "/dev/nvidia0", "/dev/kfd"))


def default_device() -> str:
    """``cuda`` where torch sees a GPU, else ``cpu`` (decided without torch where no driver is)."""
    if not gpu_driver_present():
        return "cpu"
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@functools.cache
def cpu_has_matrix_units(dtype: str) -> bool:
    """Whether this CPU multiplies ``bfloat16`` (AVX-512 BF16 or AMX) or ``float16`` (AVX-512
    FP16 or AMX-FP16) matrices in hardware. Without, torch's generic kernels are slower than
    fp32's: at W's shapes 17 against 139 GFLOP/s on a 2-core AVX2 EPYC."""
    import torch

    def probe(name: str) -> bool:
        check = getattr(getattr(torch, "cpu", None), name, None)
        return bool(check()) if callable(check) else False

    if dtype == "bfloat16":
        return probe("_is_avx512_bf16_supported") or probe("_is_amx_tile_supported")
    if dtype == "float16":
        return probe("_is_amx_fp16_supported") or "avx512_fp16" in _cpu_flags()
    return True


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            return next((set(line.split(":", 1)[1].split()) for line in cpuinfo if line.startswith("flags")), set())
    except OSError:
        return set()


def is_oom(exc: Exception) -> bool:
    return "out of memory" in str(exc).lower()


def free_accelerator_memory() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def halving_on_oom(run: Callable[[list[int]], list[T]], batch: list[int],
                   shrink: Callable[[int], None]) -> list[T]:
    """``run(batch)``; on out-of-memory, halve the batch (telling ``shrink`` the smaller size,
    which later batches keep) instead of failing."""
    try:
        return run(batch)
    except Exception as exc:
        if not (is_oom(exc) and len(batch) > 1):
            raise
    free_accelerator_memory()
    half = len(batch) // 2
    shrink(max(1, half))
    log.warning("out of memory at batch size %d; continuing with batch size %d", len(batch), half)
    return halving_on_oom(run, batch[:half], shrink) + halving_on_oom(run, batch[half:], shrink)


@functools.cache
def limit_threads() -> None:
    """Split a host's cores between the xdist workers on it so they do not oversubscribe the CPU
    (once per process)."""
    workers = local_workers()
    if workers > 1 and "OMP_NUM_THREADS" not in os.environ:
        import torch

        torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))
