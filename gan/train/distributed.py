"""torchrun (DDP) plumbing: the process group, gradient averaging, and collectives that fail loudly.

Every collective of a run is listed here, in the order each rank reaches it, so a reader can check that all
ranks call the same ones in the same order (a mismatch is a silent hang, issue 13):

  start    broadcast G and D from rank 0                        (build)
  start    barrier "output folder checked"                      (after rank 0 checked --out)
  step     all_reduce D grads, [all_reduce G grads], all_reduce "all losses finite"
  epoch    all_reduce "time budget spent"                       (each epoch's end, --time-budget unfitted only)
  budget   broadcast "time budget plan" from rank 0             (fitted --time-budget: each epoch's end and 8,
                                                                 16, 32, ... steps in, until the cool-down)
  eval     barrier "evaluation"                                 (rank 0 evaluates alone, the others wait here)
  ckpt     all_gather_object RNG states                         (rank 0 writes the file)
  end      barrier "end of training", then the group is torn down

Everything rank 0 does alone (progress grids, evaluation, best/, the model folder, directions, calibration,
the critic, the model card, --push-to-hub) calls no collective: in-training metrics are computed with
``sync_on_compute=False``, and the work after training runs once the group is gone, so no rank waits on it.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Iterator

import torch
import torch.distributed as dist
import torch.nn as nn

from .options import TrainingError


@dataclass
class Dist:
    """This process's place in the run (rank 0 of 1 without torchrun)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    timeout_s: int = 1800

    @property
    def main(self) -> bool:
        return self.rank == 0


def is_main_process() -> bool:
    """True unless torchrun started this process as a rank other than 0 (valid before and after the group)."""
    return int(os.environ.get("RANK", "0")) == 0


def setup_distributed(device_hint: str, timeout_s: int = 1800) -> Dist:
    """Initialise torch.distributed when launched by torchrun (WORLD_SIZE > 1), with a collective timeout."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist(timeout_s=timeout_s)
    use_cuda = torch.cuda.is_available() and device_hint != "cpu"
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo", timeout=timedelta(seconds=timeout_s))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if use_cuda:
        torch.cuda.set_device(local)
    return Dist(dist.get_rank(), dist.get_world_size(), local, timeout_s)


def teardown(d: Dist) -> None:
    """Leave the process group (idempotent); nothing after this waits on another rank."""
    if d.world > 1 and dist.is_initialized():
        dist.destroy_process_group()


@contextmanager
def collective(d: Dist, name: str, step: int) -> Iterator[None]:
    """Run one collective; a timeout or a lost peer becomes a TrainingError naming it and the step."""
    try:
        yield
    except (RuntimeError, dist.DistError) as e:  # gloo: RuntimeError / DistBackendError on timeout or lost peer
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise TrainingError(
            f"rank {d.rank}/{d.world}: collective '{name}' at step {step} failed after waiting up to "
            f"{d.timeout_s} s ({first}). Another rank stopped or is out of step; continue with --resume "
            f"(raise --ddp-timeout if a rank is just slow)") from None


def barrier(d: Dist, name: str, step: int) -> None:
    """All ranks meet here (a no-op in a single process)."""
    if d.world > 1:
        with collective(d, name, step):
            dist.barrier()


def all_reduce_grads(params: list[nn.Parameter], d: Dist, step: int) -> None:
    """Average gradients across ranks with one flat all-reduce."""
    grads = [p.grad for p in params if p.grad is not None]
    if d.world <= 1 or not grads:
        return
    flat = torch.cat([g.flatten() for g in grads])
    with collective(d, "gradient all-reduce", step):
        dist.all_reduce(flat)
    flat /= d.world
    for g, f in zip(grads, torch._utils._unflatten_dense_tensors(flat, grads)):
        g.copy_(f)


def all_finite(ok: torch.Tensor, d: Dist, step: int) -> bool:
    """True when the losses are finite on every rank (so all ranks skip a bad batch together)."""
    if d.world > 1:
        ok_t = ok.float()
        with collective(d, "finite-loss all-reduce", step):
            dist.all_reduce(ok_t, op=dist.ReduceOp.MIN)
        ok = ok_t.bool()
    return bool(ok)


def any_rank(flag: bool, d: Dist, name: str, step: int) -> bool:
    """True on every rank when flag is true on any rank (a one-item list in a single process needs no collective)."""
    if d.world <= 1:
        return flag
    dev = torch.device("cuda", d.local_rank) if dist.get_backend() == "nccl" else torch.device("cpu")
    t = torch.tensor([float(flag)], device=dev)
    with collective(d, name, step):
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def broadcast_values(values: list[float], d: Dist, name: str, step: int) -> list[float]:
    """Rank 0's numbers on every rank (float64, so integers up to 2**53 travel exactly)."""
    if d.world <= 1:
        return [float(v) for v in values]
    dev = torch.device("cuda", d.local_rank) if dist.get_backend() == "nccl" else torch.device("cpu")
    t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=dev)
    with collective(d, name, step):
        dist.broadcast(t, src=0)
    return t.tolist()


def broadcast_module(module: nn.Module, d: Dist) -> None:
    """Copy rank 0's parameters and buffers to every rank."""
    if d.world > 1:
        with collective(d, "initial weight broadcast", 0):
            for t in list(module.parameters()) + list(module.buffers()):
                dist.broadcast(t.data, src=0)


def gather_objects(obj: object, d: Dist, step: int) -> list:
    """Every rank's obj, in rank order (a one-item list in a single process)."""
    if d.world <= 1:
        return [obj]
    gathered: list = [None] * d.world
    with collective(d, "checkpoint RNG gather", step):
        dist.all_gather_object(gathered, obj)
    return gathered
