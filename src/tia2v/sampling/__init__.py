"""Samplers: ancestral DDPM, DDIM, DPM-Solver++ (2M), UniPC, all on a model_fn(x_t, t) closure."""
