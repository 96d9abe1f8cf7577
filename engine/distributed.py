"""Several processes, one run: PyTorch's own launcher (torchrun) and process group, nothing home-made.

torchrun starts one engine process per GPU (or per CPU process with gloo) and sets
RANK / LOCAL_RANK / WORLD_SIZE. Rank 0 alone writes the run folder. Decisions that
must be taken by every rank at the same step (stop, pause, checkpoint now) are made
by one small all-reduce per optimiser step: rank 0 contributes the commands it read,
every rank its own stop signal (torchrun forwards SIGTERM to all of them). A rank that
fails leaves ``rank-N-error.json`` in the run folder so that its error, with its rank,
reaches the event log even when it cannot write there itself.
"""

from __future__ import annotations

import os
import traceback
from dataclasses import dataclass

import torch
import torch.distributed as dist

from engine.contract.runstore import RunPaths, atomic_write_json

# The per-step flags travel over a CPU (gloo) group: an all-reduce of a CUDA tensor read back
# with .tolist() would make the host wait for the GPU after every optimiser step.
_flags_group: dist.ProcessGroup | None = None


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def context_from_env() -> DistContext:
    """What torchrun told this process (one process of one, without it)."""
    return DistContext(int(os.environ.get("RANK", 0)), int(os.environ.get("LOCAL_RANK", 0)),
                       int(os.environ.get("WORLD_SIZE", 1)))


def init_process_group(ctx: DistContext, device: torch.device) -> None:
    if not ctx.enabled or dist.is_initialized():
        return
    global _flags_group
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    _flags_group = dist.new_group(backend="gloo") if device.type == "cuda" else None  # None: the default (gloo)


def destroy_process_group() -> None:
    global _flags_group
    _flags_group = None
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def agree(ctx: DistContext, flags: list[int]) -> list[int]:
    """Every rank gets the maximum of every flag over all ranks (one tiny all-reduce on the CPU)."""
    if not ctx.enabled:
        return flags
    tensor = torch.tensor(flags, dtype=torch.int32)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX, group=_flags_group)
    return [int(v) for v in tensor.tolist()]


def gather_objects(ctx: DistContext, obj):
    """A list with every rank's object (rank order); just ``[obj]`` in one process."""
    if not ctx.enabled:
        return [obj]
    out = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


def barrier(ctx: DistContext) -> None:
    if ctx.enabled:
        dist.barrier()


def record_rank_error(paths: RunPaths, ctx: DistContext, exc: BaseException) -> None:
    """A non-main rank's failure, left where rank 0 (or the supervisor) will report it."""
    atomic_write_json(paths.rank_error(ctx.rank), {
        "rank": ctx.rank, "message": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc(),
    })
