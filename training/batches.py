"""Training batches: the deterministic stream of (images, labels) batches the trainer and the
evaluation classifier learn from, assembled on a host thread (BatchStream) or on the device
(DeviceBatchStream)."""
from __future__ import annotations

import queue
import threading

import numpy as np
import torch

from core.errors import FaderError


class BatchStream:
    """Background thread producing (uint8 NHWC tensor, int64 labels) batches from a memmap.

    The order is a pure function of (seed, batch number): epoch e is the permutation
    default_rng([seed, e]) of the training indices, flips come from default_rng([seed, 1<<20, b]).
    Resuming at batch b therefore reproduces exactly the batches an uninterrupted run would see.
    Data-parallel (world_size > 1): batch_size is the global batch and this process gets rows
    [rank*B/world_size, (rank+1)*B/world_size) of each, with their flips (training/distributed.py).
    """

    def __init__(self, images, labels: np.ndarray, indices, batch_size: int, seed: int, start_batch: int,
                 flip: bool, prefetch: int = 6, pin: bool = False, rank: int = 0, world_size: int = 1):
        self.images, self.labels = images, labels
        self.indices = np.asarray(indices)
        if len(self.indices) == 0:
            raise FaderError("no training images")
        self.bs, self.seed, self.flip, self.pin = batch_size, seed, flip, pin
        if batch_size % world_size:
            raise FaderError(f"batch size {batch_size} is not a multiple of the {world_size} processes")
        per = batch_size // world_size
        self.rows = slice(rank * per, (rank + 1) * per)
        self.batch = start_batch
        self._q: queue.Queue = queue.Queue(prefetch)
        self._stop = threading.Event()
        self._perm_cache: dict = {}
        self._thread = threading.Thread(target=self._run, args=(start_batch,), daemon=True, name="fader-batches")
        self._thread.start()

    def _perm(self, epoch: int) -> np.ndarray:
        p = self._perm_cache.get(epoch)
        if p is None:
            p = self.indices[np.random.default_rng([self.seed, epoch]).permutation(len(self.indices))]
            self._perm_cache = {epoch: p}
        return p

    def plan(self, b: int) -> tuple:
        """(image indices, horizontal-flip mask or None) of batch number b (deterministic)."""
        n = len(self.indices)
        pos = b * self.bs
        idx = np.empty(self.bs, dtype=np.int64)
        filled = 0
        while filled < self.bs:
            e, off = divmod(pos + filled, n)
            take = min(self.bs - filled, n - off)
            idx[filled:filled + take] = self._perm(e)[off:off + take]
            filled += take
        m = np.random.default_rng([self.seed, 1 << 20, b]).random(self.bs) < 0.5 if self.flip else None
        return idx, m

    def make(self, b: int) -> tuple:
        """Batch number b (deterministic); this process's rows of it when data-parallel."""
        idx, m = self.plan(b)
        idx = idx[self.rows]
        order = np.argsort(idx, kind="stable")  # sorted reads are kinder to the page cache
        x = np.empty((len(idx),) + self.images.shape[1:], np.uint8)
        x[order] = self.images[idx[order]]
        if m is not None:
            m = m[self.rows]
            x[m] = x[m, :, ::-1]
        xt = torch.from_numpy(x)
        yt = torch.from_numpy(self.labels[idx].astype(np.int64))
        if self.pin:
            xt, yt = xt.pin_memory(), yt.pin_memory()
        return xt, yt

    def _run(self, b: int) -> None:
        try:
            while not self._stop.is_set():
                item = self.make(b)
                while not self._stop.is_set():
                    try:
                        self._q.put(item, timeout=0.2)
                        break
                    except queue.Full:
                        continue
                b += 1
        except BaseException as e:  # surfaced to the consumer
            self._q.put(e)

    def next(self) -> tuple:
        """The next batch (blocks until the loader has it)."""
        item = self._q.get()
        if isinstance(item, BaseException):
            raise item
        self.batch += 1
        return item

    def close(self) -> None:
        self._stop.set()
        try:
            while True:
                self._q.get_nowait()
        except queue.Empty:
            pass
        self._thread.join(timeout=5)


class DeviceBatchStream(BatchStream):
    """The same batches as BatchStream, cut from a copy of the images held on the training device.

    For a GPU lent for minutes: the whole uint8 training set (8,000 faces at 128 px: 0.4 GB) is
    copied once, and a batch is an index + flip on the device, so large batches never wait for a
    host thread to gather and copy them.
    """

    def __init__(self, images, labels: np.ndarray, indices, batch_size: int, seed: int, start_batch: int,
                 flip: bool, device, rank: int = 0, world_size: int = 1):
        self.images, self.labels = images, labels
        self.indices = np.asarray(indices)
        if len(self.indices) == 0:
            raise FaderError("no training images")
        self.bs, self.seed, self.flip = batch_size, seed, flip
        if batch_size % world_size:
            raise FaderError(f"batch size {batch_size} is not a multiple of the {world_size} processes")
        per = batch_size // world_size
        self.rows = slice(rank * per, (rank + 1) * per)
        self.batch = start_batch
        self._perm_cache = {}
        used = np.unique(self.indices)
        self._where = np.full(len(images), -1, np.int64)
        self._where[used] = np.arange(len(used))
        self._x = torch.from_numpy(np.ascontiguousarray(images[used])).to(device)
        self._y = torch.from_numpy(labels[used].astype(np.int64)).to(device)
        self.device = torch.device(device)

    def next(self) -> tuple:
        idx, m = self.plan(self.batch)
        idx, m = idx[self.rows], (None if m is None else m[self.rows])
        self.batch += 1
        pos = torch.from_numpy(self._where[idx]).to(self.device)
        x = self._x.index_select(0, pos)
        if m is not None:
            flip = torch.from_numpy(m).to(self.device).view(-1, 1, 1, 1)
            x = torch.where(flip, x.flip(2), x)
        return x, self._y.index_select(0, pos)

    def close(self) -> None:
        self._x = self._y = None
