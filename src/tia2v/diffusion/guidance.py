"""Classifier-free guidance with one scale per modality, in one batched forward pass.

With the modalities in the order text (t), image (i), audio (a), and ∅ the null condition:

    ε̂ = ε(∅) + s_t·(ε(t) − ε(∅)) + s_i·(ε(t,i) − ε(t)) + s_a·(ε(t,i,a) − ε(t,i))

(ASVA / InstructPix2Pix style). A modality that is absent from the request, or whose scale
is 0, is left out of the chain altogether, so it never reaches the prediction: with s_i = 0
the last term becomes s_a·(ε(t,a) − ε(t)). With every scale 1 the sum telescopes to the plain
conditional ε(t,i,a). Only the prediction channels are guided; a learned variance is taken
from the fully conditional branch. Below ``min_t`` (guidance in a limited interval,
Kynkäänniemi et al. 2024) that branch alone is evaluated: late in sampling, guidance
costs a branch per modality and, on the toy domain, blurs edges (docs/guidance.md).

A distilled student (``tia2v train distill``) computes the guided prediction in one call: the
scales are its input (``student_model_fn``), with the same rule for a scale of 0.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from tia2v.conditions import MODALITIES, Conditions

GuidanceScales = dict[str, float]


def guided_model_fn(
    model: torch.nn.Module,
    cond: Conditions,
    scales: GuidanceScales,
    timestep_fn: Callable[[torch.Tensor], torch.Tensor],
    learn_sigma: bool,
    without_image: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    min_t: int = 0,
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """A sampler's ``model_fn(x_t, t)`` that applies per-modality guidance.

    Args:
        model: a UNet taking (x, network timesteps, Conditions, keep).
        cond: the request's conditions (None fields are absent modalities).
        scales: guidance scale per modality name; missing names count as 1.
        timestep_fn: sampler timesteps → the network's timesteps.
        learn_sigma: the output carries variance channels after the prediction channels.
        without_image: (x_t, t) → the input of branches without the image, for models that see a
            clean first frame as part of the image condition (``first_frame: clean``): there
            frame 0 must be noised like the other frames, as in training.
        min_t: sampler timesteps below this get the fully conditional prediction, unguided.
    """
    present = [name for name in MODALITIES if getattr(cond, name) is not None]
    chain = [name for name in present if scales.get(name, 1.0) != 0.0]
    copies = len(chain) + 1  # ε(∅), then one more modality switched on per copy

    def model_fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        batch = x.shape[0]
        # Copy k (0 = all null) keeps the first k modalities of the chain; the last keeps all.
        ks = range(copies) if int(t.max()) >= min_t else [copies - 1]
        keep = {
            name: torch.tensor(
                [name in chain and chain.index(name) < k for k in ks], device=x.device
            ).repeat_interleave(batch)
            for name in present
        }
        batched = cond.repeat(len(ks))
        if without_image is None or "image" not in chain or len(ks) == 1:
            x_in = x.repeat(len(ks), *([1] * (x.dim() - 1)))
        else:
            unlocked = without_image(x, t)
            image_on = chain.index("image") + 1  # copies from here on keep the image
            x_in = torch.cat([x if k >= image_on else unlocked for k in ks])
        out = model(x_in, timestep_fn(t).repeat(len(ks)), batched, keep)  # (len(ks)·B, C', …)
        if len(ks) == 1:
            return out
        outs = out.chunk(copies, dim=0)
        split = (lambda o: o.chunk(2, dim=1)) if learn_sigma else (lambda o: (o, None))
        predictions = [split(o)[0] for o in outs]
        guided = predictions[0]
        for k, name in enumerate(chain, start=1):
            guided = guided + scales.get(name, 1.0) * (predictions[k] - predictions[k - 1])
        variance = split(outs[-1])[1]
        return guided if variance is None else torch.cat([guided, variance], dim=1)

    return model_fn


# ----------------------------------------------------------------------------------------------
# A distilled student: the scales are an input of one network call.


def guidance_vector(
    cond: Conditions, scales: GuidanceScales, batch: int, device: torch.device
) -> torch.Tensor:
    """A student's scale input (B, 3), text–image–audio: 0 where ``cond`` lacks the modality,
    else its scale (missing names count as 1)."""
    row = [scales.get(name, 1.0) if getattr(cond, name) is not None else 0.0 for name in MODALITIES]
    return torch.tensor([row] * batch, dtype=torch.float32, device=device)


def without_absent(cond: Conditions, scales: GuidanceScales) -> Conditions:
    """The conditions without the modalities whose scale is 0 (missing names count as 1)."""
    kept = Conditions(text_mask=cond.text_mask, lowres=cond.lowres)
    for name in MODALITIES:
        if scales.get(name, 1.0) != 0.0 and getattr(cond, name) is not None:
            setattr(kept, name, getattr(cond, name))
    if kept.text is None:
        kept.text_mask = None
    if kept.image is not None:
        kept.first_frame = cond.first_frame
    return kept


def student_model_fn(
    network: torch.nn.Module,
    cond: Conditions,
    scales: GuidanceScales,
    timestep_fn: Callable[[torch.Tensor], torch.Tensor],
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """A sampler's ``model_fn(x_t, t)`` for a student: one call, the scales as its input; a
    modality with scale 0 is absent, as under the teacher's guidance."""
    cond = without_absent(cond, scales)

    def model_fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        w = guidance_vector(cond, scales, x.shape[0], x.device)
        return network(x, timestep_fn(t), cond, None, w)

    return model_fn
