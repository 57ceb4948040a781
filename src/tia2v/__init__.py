"""tia2v: text + image + audio to video diffusion."""

__version__ = "0.1.0"
