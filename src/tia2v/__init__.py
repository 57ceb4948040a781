"""tia2v: text + image + audio to video diffusion."""

__version__ = "0.1.0"


def __getattr__(name: str):
    # Lazy: `import tia2v` stays light; `from tia2v import TIA2VPipeline` loads torch.
    if name == "TIA2VPipeline":
        from tia2v.pipeline import TIA2VPipeline

        return TIA2VPipeline
    raise AttributeError(f"module 'tia2v' has no attribute {name!r}")
