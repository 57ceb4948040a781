"""``TIA2VPipeline``: text + first frame + audio → a video with sound.

pipe = TIA2VPipeline.from_pretrained("checkpoints/demo")
out = pipe(text="a red circle moving left on a blue background", image="first.png",
           audio="beats.wav", num_inference_steps=25, sampler="dpm++", seed=0)
out.save("out.mp4")   # H.264 + AAC, and out.json with every setting
"""

from tia2v.pipeline.output import PipelineOutput
from tia2v.pipeline.pipeline import TIA2VPipeline

__all__ = ["PipelineOutput", "TIA2VPipeline"]
