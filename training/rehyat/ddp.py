"""Data-parallel plumbing for ``rehyat.train`` (one process per GPU, launched by torchrun).

    python3 -m torch.distributed.run --nproc_per_node N --master_addr 127.0.0.1 --master_port P \\
        -m rehyat.train ...                                   (from training/)

Not launched distributed (WORLD_SIZE unset or 1) every function here is a no-op, so single-process
training is unchanged bit for bit. Launched distributed: the default process group is NCCL on CUDA
(gradient all-reduce, weight broadcasts) and gloo on CPU; host-side agreement (the stop flag of the
wall-clock budgeted loops, barriers, checksums) always goes through a gloo group on CPU tensors, so it
never waits for the GPU stream.
"""
from __future__ import annotations

import contextlib
import datetime
import hashlib
import os
from typing import Iterable, List

import torch
import torch.distributed as dist

_CPU_GROUP = None  # gloo group for host-side agreement (the default group itself on CPU)
TIMEOUT_S = 1800   # rank 0 alone runs stage 1, the sweep and evaluation while the others wait


def init() -> bool:
    """Join the process group that torchrun describes in the environment; True if distributed."""
    global _CPU_GROUP
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    if is_on():
        return True
    # NVLink multicast can take a shared host's GPUs out of service: keep it off (device README)
    for k, v in (("NCCL_NVLS_ENABLE", "0"), ("TORCH_SYMM_MEM_DISABLE_MULTICAST", "1"), ("NVSHMEM_DISABLE_NVLS", "1")):
        os.environ.setdefault(k, v)
    timeout = datetime.timedelta(seconds=TIMEOUT_S)
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(local_rank())
    dist.init_process_group("nccl" if cuda else "gloo", timeout=timeout)
    _CPU_GROUP = dist.new_group(backend="gloo", timeout=timeout) if cuda else dist.group.WORLD
    return True


def finish():
    global _CPU_GROUP
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
    _CPU_GROUP = None


def is_on() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_on() else 0


def world() -> int:
    return dist.get_world_size() if is_on() else 1


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main() -> bool:
    return rank() == 0


def _cpu_group():
    return _CPU_GROUP if _CPU_GROUP is not None else dist.group.WORLD


def barrier():
    if is_on():
        dist.barrier(group=_cpu_group())


def broadcast_floats(values: List[float], src: int = 0) -> List[float]:
    """Every rank gets rank ``src``'s values (float64, through gloo: no GPU synchronisation)."""
    if not is_on():
        return list(values)
    t = torch.tensor(values, dtype=torch.float64)
    dist.broadcast(t, src, group=_cpu_group())
    return t.tolist()


def any_true(flag: bool) -> bool:
    if not is_on():
        return bool(flag)
    t = torch.tensor([1 if flag else 0], dtype=torch.int64)
    dist.all_reduce(t, op=dist.ReduceOp.MAX, group=_cpu_group())
    return bool(t.item())


def gather_ints(x: int) -> List[int]:
    if not is_on():
        return [int(x)]
    t = torch.tensor([int(x)], dtype=torch.int64)
    out = [torch.zeros_like(t) for _ in range(world())]
    dist.all_gather(out, t, group=_cpu_group())
    return [int(o.item()) for o in out]


@torch.no_grad()
def broadcast_module(module: torch.nn.Module, src: int = 0, params: bool = True):
    """Make every rank's parameters (unless ``params=False``) and buffers rank ``src``'s (default
    group: NCCL on GPU)."""
    if not is_on() or module is None:
        return
    for t in (list(module.parameters()) if params else []) + list(module.buffers()):
        dist.broadcast(t.data, src)


@torch.no_grad()
def allreduce_mean_grads(params: Iterable[torch.nn.Parameter]):
    """Average .grad over ranks by hand (a missing grad counts as zeros), as DDP would."""
    if not is_on():
        return
    params = [q for q in params if q.requires_grad]
    for q in params:
        if q.grad is None:
            q.grad = torch.zeros_like(q)
    flat = torch.cat([q.grad.reshape(-1).float() for q in params])
    dist.all_reduce(flat)
    flat /= world()
    i = 0
    for q in params:
        n = q.numel()
        q.grad.copy_(flat[i:i + n].view_as(q.grad))
        i += n


def wrap(module: torch.nn.Module):
    """DistributedDataParallel around ``module`` (its trainable parameters; all are used every step).
    Construction broadcasts rank 0's parameters and buffers to every rank."""
    from torch.nn.parallel import DistributedDataParallel as DDP
    cuda = next(module.parameters()).is_cuda
    return DDP(module, device_ids=[torch.cuda.current_device()] if cuda else None,
               broadcast_buffers=False, find_unused_parameters=False)


def no_sync(ddp_module):
    return ddp_module.no_sync() if ddp_module is not None else contextlib.nullcontext()


def checksum(*modules: torch.nn.Module) -> int:
    """63-bit digest of the exact bytes of the modules' state (parameters and buffers)."""
    h = hashlib.sha256()
    for m in modules:
        for k, v in m.state_dict().items():
            v = v.detach().cpu()
            h.update(k.encode())
            h.update((v.float() if v.is_floating_point() else v).contiguous().numpy().tobytes())
    return int.from_bytes(h.digest()[:8], "big") >> 1


def rank_checksums(*modules: torch.nn.Module) -> List[str]:
    """Every rank's checksum of the modules, on every rank (identical weights -> one value)."""
    return [f"{c:016x}" for c in gather_ints(checksum(*modules))]


def share(n: int) -> int:
    """This rank's part of n items split over the ranks (at least 1 when n > 0)."""
    if n <= 0:
        return 0
    w, r = world(), rank()
    return max(1, n // w + (1 if r < n % w else 0))
