"""Progress bars fed by a sampler's callback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

from tia2v.sampling.common import Callback


@contextmanager
def progress_bar(enabled: bool, desc: str, total: int | None = None) -> Iterator[Callback]:
    """A sampler callback that advances a tqdm bar (silent unless ``enabled``); the total
    comes from the sampler when not given."""
    from tqdm import tqdm

    bar = tqdm(desc=desc, total=total, unit="step", disable=not enabled)

    def advance(step: int, total: int, x: torch.Tensor, x0: torch.Tensor) -> None:
        bar.total = total
        bar.update(1)

    try:
        yield advance
    finally:
        bar.close()
