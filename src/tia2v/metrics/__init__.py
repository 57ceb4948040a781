"""Metrics: the toy-VAT ground truth and the paper's suite (``tia2v eval``).

The names below are importable without loading torch (the CLI builds its help from them).
"""

ALL_METRICS = (
    "psnr",
    "ssim",
    "av_align",
    "toy",
    "fvd",
    "fid",
    "fd",
    "clip_text",
    "first_frame",
    "temporal",
    "clip_audio",
    "clap_audio_text",
)
I3D_HINT = "i3d_torchscript.pt (the I3D file of StyleGAN-V's FVD code)"
INCEPTION_HINT = "inception-2015-12-05.pt (the Inception file of StyleGAN2-ADA's FID code)"
