"""Samplers: ancestral DDPM, DDIM, DPM-Solver++, UniPC, each a pure function on a
``model_fn(x_t, t)`` closure; ``registry.SAMPLERS`` names them."""
