"""Data-parallel runs under ``torchrun`` / ``accelerate launch``: one process per device.

Every process runs the same suite. The HF Trainer makes training data-parallel (DDP: gloo on
CPU, NCCL on CUDA); audits shard their inference batches across processes and gather, so every
process computes the same figures; only the main process (rank 0) writes the run directory,
the ledger and the report. Single-process runs never import torch.distributed here.

The launcher's environment (``WORLD_SIZE``, ``RANK``) is read without importing torch, so
``auditft --help`` stays instant.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def rank() -> int:
    return int(os.environ.get("RANK", "0") or 0)


def enabled() -> bool:
    return world_size() > 1


def is_main() -> bool:
    return rank() == 0


def init() -> None:
    """Join the launcher's process group (gloo on CPU, NCCL on CUDA) before any collective.
    Accelerate and the Trainer then reuse this group."""
    if not enabled():
        return
    import torch
    import torch.distributed as dist

    if dist.is_initialized():
        return
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend="nccl" if cuda else "gloo")


def finish() -> None:
    """End a run that completed on every process: meet at a barrier, then leave the group.

    A gloo worker thread frees each finished collective's tensors after the caller has moved
    on, and needs the GIL to do it. A process that exits right after its last collective (the
    report's broadcast) can start tearing the interpreter down first, and that thread then
    aborts the process (SIGABRT, "terminate called without an active exception"), so the
    launcher reports a finished run as failed. A process waiting at a barrier gives up the GIL
    while the others catch up, and a barrier's own work holds no Python tensors. Only after a
    completed run: after a failure the other processes may never reach a barrier, and the
    launcher stops them anyway."""
    if not enabled():
        return
    import torch.distributed as dist

    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def barrier() -> None:
    if enabled():
        import torch.distributed as dist

        dist.barrier()


def broadcast(value: Any) -> Any:
    """Rank 0's ``value`` on every process (any picklable object)."""
    if not enabled():
        return value
    import torch.distributed as dist

    box = [value if is_main() else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather(value: Any) -> list[Any]:
    """Every process's ``value``, in rank order, on every process."""
    if not enabled():
        return [value]
    import torch.distributed as dist

    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, value)
    return out


def my_share(n_batches: int) -> range:
    """The batch numbers this process computes: every world_size-th, starting at its rank."""
    return range(rank(), n_batches, world_size())


def per_device_batch(global_batch: int) -> int:
    """The suite's ``batch_size`` is the global batch: the same optimisation whatever the
    number of processes (a remainder is rounded up, so the global batch never shrinks)."""
    return max(1, -(-global_batch // world_size()))


@contextmanager
def adapter_target(adapter_dir: Path) -> Iterator[Path]:
    """Where this process's tuner writes the adapter: the real directory on rank 0, a private
    scratch copy elsewhere (DDP keeps the weights identical, so that copy is redundant and two
    processes never write one file). Every process leaves only once rank 0's adapter is
    complete, so all of them can load it."""
    # no barrier when tuning raised: the process exits and the launcher stops the others
    if is_main():
        yield Path(adapter_dir)
        barrier()
        return
    with tempfile.TemporaryDirectory(prefix=f"auditft-rank{rank()}-") as scratch:
        yield Path(scratch)
        barrier()
