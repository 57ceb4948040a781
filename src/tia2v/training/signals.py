"""Stopping a run cleanly: SIGTERM (schedulers, ``kill``) or Ctrl-C end it after the step.

The handler only records the request; the loop asks between steps, writes a checkpoint
there and raises ``Stopped``, so ``--resume`` continues exactly. A second Ctrl-C stops at
once and keeps the last checkpoint. Signals ignored when the process started (``nohup``,
``&``) stay ignored.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

import torch


class Stopped(KeyboardInterrupt):
    """The run stopped on request between two steps, after writing a checkpoint."""


class StopRequest:
    """Catches SIGTERM and SIGINT between ``install()`` and ``restore()``."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.signal_name: str | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signal_name is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal_name = signal.Signals(signum).name

    def install(self) -> None:
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                if signal.getsignal(signum) is not signal.SIG_IGN:
                    self._previous[signum] = signal.signal(signum, self._handle)

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def requested(self, accelerator) -> bool:
        """Whether any rank was asked to stop (every rank must call this at the same step)."""
        if accelerator.num_processes == 1:
            return self.signal_name is not None
        flag = torch.tensor([float(self.signal_name is not None)], device=accelerator.device)
        return bool(accelerator.reduce(flag, "max").item())
