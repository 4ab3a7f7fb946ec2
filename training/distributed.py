"""Data-parallel training on torchrun: one model, N processes, kept identical by DistributedDataParallel.

`torchrun --nproc_per_node N [--nnodes M --rdzv-backend c10d --rdzv-endpoint HOST:PORT] $(which fader-train) ...`
(or `torchrun ... -m training ...`) starts N processes per machine; each reads its rank from torchrun's
environment (RANK, WORLD_SIZE, LOCAL_RANK, ...) and `init_from_env` joins them in a torch.distributed
process group (gloo on CPU, NCCL on CUDA). Without that environment (a plain `fader-train`), or with a
world of one process, nothing here is used and training runs exactly as it always did.

What keeps N processes equal to one process with the same --batch-size (up to float rounding):
- the global batch: batch number b is the same global batch as in a single process (the trainer's
  BatchStream is a function of (seed, b)); rank r takes rows [r*B/N, (r+1)*B/N) of it and reads only
  those images from the preprocessing cache (this is the distributed sampler; torch's
  DistributedSampler draws another order, which would make N processes train another model);
- gradients: each network that trains is wrapped in DistributedDataParallel, which averages the
  gradients over the ranks: the mean of N per-rank batch means is the global batch mean;
- batch norm: statistics over the global batch (torch's SyncBatchNorm on CUDA; torch's refuses CPU
  tensors, so on CPU `CpuSyncBatchNorm` below all-reduces the per-channel sums itself);
- randomness: every rank keeps the same torch RNG state and draws per-sample random numbers (random
  attribute codes, dropout masks) for the whole global batch, keeping its own rows (`batch_rand`,
  `BatchSliceDropout`), so the draws and the RNG stream are those of the single process.

Rank 0 alone writes the run folder (checkpoints, log.jsonl, previews, model.fader) and builds the
preprocessing cache; it does such work inside `main_only`, while the others wait on the launch's
key-value store, watching a heartbeat: a failure on rank 0 ends every rank at once with its message,
and a rank 0 that dies or hangs ends them after `timeout` seconds. Collectives time out after the same
`timeout`, so a rank that dies during training takes the others down in bounded time (torchrun also
stops the other processes of its machine as soon as one fails).
"""
from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Callable, Optional

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

from core.attributes import counted
from core.errors import FaderError

DEFAULT_TIMEOUT = 300.0   # seconds; fader-train --dist-timeout
# Stop reasons every rank must agree on, by priority (the highest one any rank has wins).
STOP_REASONS = (None, "time budget", "interrupted", "SIGTERM")


def world_size_from_env() -> int:
    """WORLD_SIZE as torchrun sets it (1 when absent: a plain run)."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        raise FaderError(f"WORLD_SIZE={os.environ['WORLD_SIZE']!r} is not a number") from None


def default_threads(ctx: Optional["DistContext"]) -> int:
    """Intra-op threads when --threads is 0: the cores this process may use, shared by the
    processes of this machine."""
    from core.engine import usable_cores
    cores = usable_cores()
    return max(1, cores // (ctx.local_world_size if ctx is not None else 1))


class RemoteFailure(FaderError):
    """Rank 0 failed while the others waited for it; rank 0 has printed the reason."""


@dataclass
class DistContext:
    """This process's place in a data-parallel run, and the collective operations the trainer needs."""

    rank: int
    world_size: int
    local_rank: int
    local_world_size: int
    node: int
    device: torch.device
    backend: str
    timeout: float
    store: Any = field(repr=False)
    cpu_group: Any = field(default=None, repr=False)   # gloo, for the host-side flags (None: the default group is gloo)
    _phase: int = 0
    _open: Optional["Phase"] = field(default=None, repr=False)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    # -------------------------------------------------------------- batches and randomness
    def rows(self, n_global: int) -> slice:
        """This rank's rows of a global batch of n_global samples."""
        per = n_global // self.world_size
        return slice(self.rank * per, (self.rank + 1) * per)

    def batch_rand(self, shape, device) -> torch.Tensor:
        """torch.rand for this rank's rows of a per-sample draw: the whole global batch is drawn
        (as one process would), this rank's rows are kept."""
        full = torch.rand((shape[0] * self.world_size,) + tuple(shape[1:]), device=device)
        return full[self.rows(full.shape[0])]

    # -------------------------------------------------------------- collectives
    def _comm(self, t: torch.Tensor) -> torch.Tensor:
        return t.to(self.device) if self.backend == "nccl" else t.cpu()

    def all_reduce_mean_(self, t: torch.Tensor) -> torch.Tensor:
        """Average `t` over the ranks, in place."""
        c = self._comm(t)
        dist.all_reduce(c)
        c.div_(self.world_size)
        if c is not t:
            t.copy_(c)
        return t

    def agree_stop(self, reason: Optional[str]) -> Optional[str]:
        """The stop reason every rank adopts: the highest-priority one any rank has (None: go on).
        Once per iteration, on the CPU group: no wait for the GPU."""
        t = torch.tensor([STOP_REASONS.index(reason)], dtype=torch.int64)
        dist.all_reduce(t, op=dist.ReduceOp.MAX, group=self.cpu_group)
        return STOP_REASONS[int(t.item())]

    def check_same(self, what: str, values, hint: str) -> None:
        """Raise on every rank when the ranks disagree on these integers (data, checkpoint, options)."""
        t = torch.tensor([int(v) % (1 << 62) for v in values], dtype=torch.int64)
        lo, hi = t.clone(), t.clone()
        dist.all_reduce(lo, op=dist.ReduceOp.MIN, group=self.cpu_group)
        dist.all_reduce(hi, op=dist.ReduceOp.MAX, group=self.cpu_group)
        if not torch.equal(lo, hi):
            raise FaderError(f"the processes of this run disagree on {what}: {hint}")

    def wrap(self, module: nn.Module) -> nn.Module:
        """`module` in DistributedDataParallel (gradients averaged over the ranks in backward; rank
        0's weights and buffers broadcast once). Buffers are not broadcast at every forward: the
        synchronised batch norm keeps them equal."""
        from torch.nn.parallel import DistributedDataParallel
        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=ids, forward_sync_buffers=False)

    # -------------------------------------------------------------- rank 0's work
    def phase(self, what: str, per_node: bool = False) -> "Phase":
        """Begin work that rank 0 alone does (per_node: the first process of each machine): the
        leader gets the Phase at once and must end() it; every other rank waits here until the
        leader has ended it (or failed, or shown no sign of life for `timeout` seconds)."""
        self._phase += 1
        leader = self.local_rank == 0 if per_node else self.is_main
        key = f"phase{self._phase}" + (f"/node{self.node}" if per_node else "")
        ph = Phase(self, what, key, leader, "the first process of this machine" if per_node else "rank 0")
        if leader:
            self._open = ph
            ph._start()
        else:
            ph._wait()
        return ph

    def main_only(self, what: str, fn: Callable[[], Any], per_node: bool = False) -> Any:
        """fn() on rank 0 (per_node: on the first process of each machine) while the others wait;
        fn's result there, None elsewhere. Rank 0's exception is raised on every rank."""
        ph = self.phase(what, per_node)
        if not ph.leader:
            return None
        try:
            out = fn()
        except BaseException as e:
            ph.fail(e)
            raise
        ph.end()
        return out

    def abort(self, e: BaseException) -> None:
        """This process is ending with `e`: a phase it leads fails, so the waiting ranks stop at once."""
        if self._open is not None:
            self._open.fail(e)

    def build_once(self, what: str, fn: Callable[[], Any]) -> Any:
        """fn() (which creates something on disk if needed, then opens it) on rank 0 first, then on
        the first process of each other machine (instant where the folder is shared), then on the rest."""
        first = self.main_only(what, fn)
        node = self.main_only(what, (lambda: first) if self.is_main else fn, per_node=True)
        if self.is_main:
            return first
        return node if self.local_rank == 0 else fn()

    def watch_launcher(self, on_gone: Callable[[], None]) -> None:
        """Call on_gone() (once) if the process that started this one (torchrun) ends: its workers
        run in sessions of their own, so a torchrun killed with -9 would leave them training on."""
        parent = os.getppid()

        def watch():
            while os.getppid() == parent:
                time.sleep(1.0)
            on_gone()
        threading.Thread(target=watch, daemon=True, name="fader-launcher-watch").start()

    def close(self) -> None:
        if dist.is_initialized():
            dist.destroy_process_group()


class Phase:
    """One piece of rank 0's work that the other ranks wait for (see DistContext.phase).

    The leader beats a counter in the launch's key-value store every second while it works and
    sets a done or fail key at the end; the waiting ranks poll those keys."""

    def __init__(self, ctx: DistContext, what: str, key: str, leader: bool, who: str):
        self.ctx, self.what, self.leader, self.who = ctx, what, leader, who
        self._beat, self._done, self._fail = key + "/beat", key + "/done", key + "/fail"
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def _start(self) -> None:
        store = self.ctx.store

        def heartbeat():
            while not self._stop.wait(1.0):
                try:
                    store.add(self._beat, 1)
                except Exception:  # the store is gone: the waiting ranks notice it themselves
                    return
        self._thread = threading.Thread(target=heartbeat, daemon=True, name="fader-heartbeat")
        self._thread.start()

    def _finish(self, key: str, value: str) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.ctx._open is self:
            self.ctx._open = None
        try:
            self.ctx.store.set(key, value)
        except Exception:
            if key == self._done:
                raise

    def end(self) -> None:
        """The leader's work is done: the waiting ranks go on."""
        if self.leader:
            self._finish(self._done, "1")

    def fail(self, e: BaseException) -> None:
        """The leader's work failed with `e`: the waiting ranks raise RemoteFailure with its message."""
        if self.leader and not self._stop.is_set():
            msg = str(e).replace("\n", " ") if isinstance(e, FaderError) else f"{type(e).__name__}: {e}"
            self._finish(self._fail, msg or type(e).__name__)

    def _wait(self) -> None:
        store, timeout = self.ctx.store, self.ctx.timeout
        last, seen_at = -1, time.monotonic()
        delay = 0.005   # short waits (a checkpoint) end promptly; long ones poll every 0.2 s
        while True:
            try:
                if store.check([self._done]):
                    return
                if store.check([self._fail]):
                    msg = store.get(self._fail).decode(errors="replace")
                    raise RemoteFailure(f"{self.who} failed during {self.what}: {msg}")
                n = store.add(self._beat, 0)
            except RemoteFailure:
                raise
            except Exception as e:
                raise FaderError(f"lost contact with the other processes while waiting for {self.who} "
                                 f"({self.what}): {str(e).splitlines()[0][:200] if str(e) else type(e).__name__}") from None
            now = time.monotonic()
            if n != last:
                last, seen_at = n, now
            elif now - seen_at > timeout:
                raise FaderError(f"{self.who} showed no sign of life for {timeout:g} s during {self.what} "
                                 "(--dist-timeout); stopping")
            time.sleep(delay)
            delay = min(0.2, delay * 1.5)


def init_from_env(device: torch.device, timeout: float = DEFAULT_TIMEOUT) -> Optional[DistContext]:
    """Join the process group torchrun's environment describes; None for a plain (one-process) run.

    `device` is the resolved --device: CUDA runs use GPU LOCAL_RANK and NCCL, CPU runs gloo."""
    world = world_size_from_env()
    if world == 1:
        return None
    if not dist.is_available():
        raise FaderError("this torch build has no torch.distributed: run fader-train without torchrun")
    if not timeout > 0:
        raise FaderError(f"--dist-timeout must be positive, got {timeout}")
    env = os.environ
    try:
        rank, local_rank = int(env["RANK"]), int(env.get("LOCAL_RANK", env["RANK"]))
        local_world = int(env.get("LOCAL_WORLD_SIZE", world))
        node = int(env.get("GROUP_RANK", "0"))
        host, port = env["MASTER_ADDR"], int(env["MASTER_PORT"])
    except (KeyError, ValueError) as e:
        raise FaderError(f"WORLD_SIZE={world} but the rest of torchrun's environment is missing or wrong ({e}); "
                         "start data-parallel runs with torchrun") from None
    if device.type == "cuda":
        n = torch.cuda.device_count()
        if local_rank >= n:
            raise FaderError(f"{local_world} processes on this machine but {counted(n, 'CUDA device')}: "
                             "give torchrun --nproc_per_node at most the number of GPUs")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    elif device.type == "cpu":
        backend = "gloo"
    else:
        raise FaderError(f"data-parallel training runs on CPU or CUDA, not {device}")
    td = timedelta(seconds=timeout)
    # torchrun's agent hosts the store (TORCHELASTIC_USE_AGENT_STORE); started by hand, rank 0 does.
    agent_store = env.get("TORCHELASTIC_USE_AGENT_STORE", "").lower() == "true"
    try:
        store = dist.TCPStore(host, port, world, is_master=rank == 0 and not agent_store, timeout=td,
                              wait_for_workers=False)
        prefix = f"fader-train/{env.get('TORCHELASTIC_RUN_ID', '')}/{env.get('TORCHELASTIC_RESTART_COUNT', '0')}/"
        store = dist.PrefixStore(prefix, store)
        kw = {"device_id": device} if backend == "nccl" else {}
        dist.init_process_group(backend, store=dist.PrefixStore("pg/", store), rank=rank, world_size=world,
                                timeout=td, **kw)
        cpu_group = dist.new_group(backend="gloo", timeout=td) if backend != "gloo" else None
    except Exception as e:
        raise FaderError(f"cannot join the other processes at {host}:{port} ({str(e).splitlines()[0][:200]})") from None
    return DistContext(rank, world, local_rank, local_world, node, device, backend, timeout, store, cpu_group)


# ------------------------------------------------------------------ networks

class _AllReduceSum(torch.autograd.Function):
    """Sum over the ranks; its gradient is the sum of the ranks' gradients (torch's own
    torch.distributed.nn.all_reduce does the same but is deprecated)."""

    @staticmethod
    def forward(ctx, t):
        t = t.clone()
        dist.all_reduce(t)
        return t

    @staticmethod
    def backward(ctx, g):
        g = g.clone()
        dist.all_reduce(g)
        return g


class CpuSyncBatchNorm(nn.modules.batchnorm._BatchNorm):
    """Batch norm with statistics over every rank's rows of the global batch, on CPU (torch's
    nn.SyncBatchNorm, used on CUDA, refuses CPU tensors, and DistributedDataParallel refuses it on
    CPU modules). The per-channel sums are all-reduced with autograd, so the gradient flows through
    the global mean and variance as in one process's batch norm. In eval mode, or outside a
    process group, it is plain batch norm."""

    def _check_input_dim(self, x) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {x.dim()}D input)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        self._check_input_dim(x)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.track_running_stats:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:
                factor = 1.0 / float(self.num_batches_tracked)
        dtype = x.dtype
        # float32 statistics also under autocast (as torch's batch norm); and batch norm's output
        # layout, which decides the order in which a following dropout draws its mask
        cl = x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
        x = x.float().contiguous(memory_format=torch.channels_last if cl else torch.contiguous_format)
        dims = [0] + list(range(2, x.dim()))
        shape = (1, -1) + (1,) * (x.dim() - 2)
        n_local, c_n = x.numel() // x.size(1), x.size(1)
        # One all-reduce forward (and one for the gradient) of [sum, sum of squares, count], taken
        # about a shift that every rank has (the running mean, close to the batch mean), so that
        # E[(x-s)^2] - E[x-s]^2 does not cancel badly.
        shift = self.running_mean.detach().clone() if self.running_mean is not None else x.new_zeros(c_n)
        xs = x - shift.view(shape)
        s = _AllReduceSum.apply(torch.cat([xs.sum(dims), (xs * xs).sum(dims), x.new_tensor([float(n_local)])]))
        s = s.double()
        n = s[-1].detach()
        m1 = s[:c_n] / n
        mean = (m1 + shift.double()).float()
        var = (s[c_n:2 * c_n] / n - m1 * m1).clamp_min(0).float()   # biased, as batch norm normalises
        invstd = torch.rsqrt(var + self.eps)
        alpha = invstd if self.weight is None else invstd * self.weight
        beta = -mean * alpha if self.bias is None else self.bias - mean * alpha
        if self.track_running_stats:
            with torch.no_grad():
                nf = float(n)
                self.running_mean.mul_(1 - factor).add_(mean.detach(), alpha=factor)
                self.running_var.mul_(1 - factor).add_(var.detach() * (nf / max(1.0, nf - 1)), alpha=factor)
        return torch.addcmul(beta.view(shape), x, alpha.view(shape)).to(dtype)


class BatchSliceDropout(nn.Dropout):
    """nn.Dropout whose mask is drawn for the whole global batch (as one process draws it) and
    cut to this rank's rows, so every rank's RNG stays in step with a single process's."""

    def __init__(self, p: float, ctx: DistContext, inplace: bool = False):
        super().__init__(p, inplace)
        self.ctx = ctx

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return super().forward(x)
        full = (x.shape[0] * self.ctx.world_size,) + tuple(x.shape[1:])
        # The mask gets x's memory layout: dropout draws in that order (it fills empty_like(x)).
        order = sorted(range(x.dim()), key=lambda d: (-x.stride(d), d))
        ones = x.new_ones([full[d] for d in order]).permute([order.index(d) for d in range(x.dim())])
        mask = F.dropout(ones, self.p, True)
        return x * mask[self.ctx.rows(full[0])]


def prepare_module(module: nn.Module, ctx: DistContext) -> nn.Module:
    """Convert a network that trains data-parallel in place: batch norm synchronised over the ranks
    (torch's SyncBatchNorm on CUDA, CpuSyncBatchNorm on CPU), dropout drawn per global batch.
    Parameters and buffers stay the same tensors (optimizers and checkpoints are unaffected;
    state-dict keys do not change)."""
    sync_bn = nn.SyncBatchNorm if ctx.device.type == "cuda" else CpuSyncBatchNorm
    for name, child in list(module.named_children()):
        if isinstance(child, nn.modules.batchnorm._BatchNorm) and not isinstance(child, (nn.SyncBatchNorm, CpuSyncBatchNorm)):
            new = sync_bn(child.num_features, child.eps, child.momentum, child.affine, child.track_running_stats)
            if child.affine:
                new.weight, new.bias = child.weight, child.bias
            new.running_mean, new.running_var = child.running_mean, child.running_var
            new.num_batches_tracked = child.num_batches_tracked
            new.train(child.training)
            setattr(module, name, new)
        elif type(child) is nn.Dropout:
            new = BatchSliceDropout(child.p, ctx, child.inplace)
            new.train(child.training)
            setattr(module, name, new)
        else:
            prepare_module(child, ctx)
    return module
