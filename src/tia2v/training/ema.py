"""Exponential moving average of the trainable weights, with a warm-up."""

from __future__ import annotations

import torch
from torch import nn


class EMA:
    """Shadow copies of a module's trainable parameters.

    decay(s) = 0 (a plain copy) for s < warmup, then min(decay, (1 + k) / (10 + k)) with
    k = s − warmup, so early averages do not remember the random initialisation.
    """

    def __init__(self, module: nn.Module, decay: float, warmup: int = 0):
        self.decay, self.warmup = decay, warmup
        self.shadow = {
            n: p.detach().clone() for n, p in module.named_parameters() if p.requires_grad
        }

    def to(self, device: torch.device) -> EMA:
        """Moves the shadow copies beside the trained weights (e.g. to the GPU)."""
        self.shadow = {n: v.to(device) for n, v in self.shadow.items()}
        return self

    def rate(self, step: int) -> float:
        if step < self.warmup:
            return 0.0
        k = step - self.warmup
        return min(self.decay, (1 + k) / (10 + k))

    @torch.no_grad()
    def update(self, module: nn.Module, step: int) -> None:
        """One fused ``lerp`` over every shadow (a few kernels, not one per parameter)."""
        parameters = dict(module.named_parameters())
        trained = [parameters[name].detach() for name in self.shadow]
        torch._foreach_lerp_(list(self.shadow.values()), trained, 1.0 - self.rate(step))

    def state_dict(self) -> dict[str, torch.Tensor]:
        return dict(self.shadow)

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        missing = set(self.shadow) - set(state)
        if missing:
            raise KeyError(f"EMA state lacks {len(missing)} tensors, e.g. {sorted(missing)[0]!r}")
        for name in self.shadow:
            self.shadow[name].copy_(state[name])

    def averaged_state(self, module: nn.Module) -> dict[str, torch.Tensor]:
        """The module's full state dict with the averaged values in place of trained ones."""
        state = {k: v.detach().clone() for k, v in module.state_dict().items()}
        state.update({k: v.clone() for k, v in self.shadow.items()})
        return state
