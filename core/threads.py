"""torch's thread count as a command sets it for its work, put back when the command returns (no Qt)."""
from __future__ import annotations


class TorchThreads:
    """`with TorchThreads() as threads: … threads.set(n) …`: the count before the first `set` is put
    back when the block ends, however it ends (or by `restore`). A command's main called in-process
    (a test, a program) left its caller at the command's count. torch is imported by `set`, not
    before (fader-train answers --help without loading it)."""

    def __init__(self):
        self._before = None

    def __enter__(self) -> "TorchThreads":
        return self

    def __exit__(self, *exc) -> None:
        self.restore()

    def set(self, n: int) -> None:
        import torch
        if self._before is None:
            self._before = torch.get_num_threads()
        torch.set_num_threads(n)

    def restore(self) -> None:
        if self._before is not None:
            import torch
            torch.set_num_threads(self._before)
            self._before = None
