"""Progress reports fed by a sampler's callback: a tqdm bar, or a function of the caller's."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch

from tia2v.sampling.common import Callback

StepReport = Callable[[str, int, int], None]
"""(what is running, steps done, steps in all) → None, called after every solver step."""


@contextmanager
def progress_bar(
    progress: bool | StepReport, desc: str, total: int | None = None
) -> Iterator[Callback]:
    """A sampler callback that advances a tqdm bar (silent when ``progress`` is False) or
    calls ``progress(desc, done, total)``; the total comes from the sampler when not given."""
    if callable(progress):

        def report(step: int, steps: int, x: torch.Tensor, x0: torch.Tensor) -> None:
            progress(desc, step + 1, steps)

        yield report
        return
    from tqdm import tqdm

    bar = tqdm(desc=desc, total=total, unit="step", disable=not progress)

    def advance(step: int, steps: int, x: torch.Tensor, x0: torch.Tensor) -> None:
        bar.total = steps
        bar.update(1)

    try:
        yield advance
    finally:
        bar.close()
