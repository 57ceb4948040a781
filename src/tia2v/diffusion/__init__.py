"""Diffusion math: schedules, the training objective, per-modality guidance."""
