"""The shipped demo model: within its size budget, loadable, and generating the README's
example (few sampler steps: this checks the contract, not the quality)."""

from pathlib import Path

from tia2v import TIA2VPipeline

DEMO = Path(__file__).parent.parent / "checkpoints" / "demo"
EXAMPLES = Path(__file__).parent.parent / "examples"


def test_demo_checkpoint_fits_its_budget_and_has_a_model_card():
    files = {p.name: p.stat().st_size for p in DEMO.iterdir()}
    assert {"config.yaml", "README.md", "motion.safetensors", "encoders.safetensors"} <= set(files)
    assert {"refiner.safetensors", "refiner_encoders.safetensors"} <= set(files)
    assert "student.safetensors" in files
    assert sum(files.values()) <= 40 * 10**6  # the whole folder: refiner and student included


def test_demo_generates_the_example_with_its_audio_and_refines_it():
    pipe = TIA2VPipeline.from_pretrained(DEMO, "cpu")
    out = pipe(
        text=(EXAMPLES / "prompt.txt").read_text().strip(),
        image=str(EXAMPLES / "first.png"),
        audio=str(EXAMPLES / "beats.wav"),
        num_inference_steps=2,
    )
    assert out.settings["sampler"] == "lcm"  # the folder's default: its few-step student
    assert out.frames.shape == (16, 32, 32, 3)
    assert out.fps == 8 and len(out.audio) == 2 * pipe.cfg.data.audio_rate
    guided = pipe(text="a red triangle", image=str(EXAMPLES / "first.png"), sampler="dpm++",
                  num_inference_steps=2)  # fmt: skip
    assert guided.frames.shape == (16, 32, 32, 3) and guided.settings["sampler"] == "dpm++"
    refined = pipe.refine(out.frames, "a red triangle moving up on a white background", steps=2)
    assert refined.shape == (16, 64, 64, 3)
