"""convert-original on a state dict laid out as the original content UNet (guided-diffusion's
``UNetModel`` with ``attention_ti`` spatial blocks), built here from that layout."""

import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from tests.helpers import manual_attention, tiny_clip_vision
from tia2v import TIA2VPipeline
from tia2v.config import apply_overrides, resolve_config
from tia2v.convert_original import convert, convert_content_state, converted_config
from tia2v.errors import InputError
from tia2v.models.unet import build_model


def resblock(prefix, cin, cout, emb):
    keys = {
        "in_layers.0.weight": (cin,),
        "in_layers.0.bias": (cin,),
        "in_layers.2.weight": (cout, cin, 3, 3),
        "in_layers.2.bias": (cout,),
        "emb_layers.1.weight": (2 * cout, emb),
        "emb_layers.1.bias": (2 * cout,),
        "out_layers.0.weight": (cout,),
        "out_layers.0.bias": (cout,),
        "out_layers.3.weight": (cout, cout, 3, 3),
        "out_layers.3.bias": (cout,),
    }
    if cin != cout:
        keys |= {"skip_connection.weight": (cout, cin, 1, 1), "skip_connection.bias": (cout,)}
    return {f"{prefix}.{k}": v for k, v in keys.items()}


def transformer(prefix, c, context):
    keys = {"norm.weight": (c,), "norm.bias": (c,), "proj_in.weight": (c, c, 1, 1)}
    keys |= {"proj_in.bias": (c,), "proj_out.weight": (c, c, 1, 1), "proj_out.bias": (c,)}
    block = "transformer_blocks.0."
    for attn, kv in (("attn1", c), ("attn2", context)):
        keys |= {f"{block}{attn}.to_q.weight": (c, c), f"{block}{attn}.to_k.weight": (c, kv)}
        keys |= {f"{block}{attn}.to_v.weight": (c, kv), f"{block}{attn}.to_out.0.weight": (c, c)}
        keys |= {f"{block}{attn}.to_out.0.bias": (c,)}
    keys |= {f"{block}ff.net.0.proj.weight": (8 * c, c), f"{block}ff.net.0.proj.bias": (8 * c,)}
    keys |= {f"{block}ff.net.2.weight": (c, 4 * c), f"{block}ff.net.2.bias": (c,)}
    for n in (1, 2, 3):
        keys |= {f"{block}norm{n}.weight": (c,), f"{block}norm{n}.bias": (c,)}
    return {f"{prefix}.{k}": v for k, v in keys.items()}


def original_layout(cfg, image_size):
    """Key → shape of the original content UNet for ``cfg`` (the guided-diffusion loops)."""
    mc, context, emb = cfg.model_channels, cfg.context_dim, 4 * cfg.model_channels
    shapes = {"time_embed.0.weight": (emb, mc), "time_embed.0.bias": (emb,)}
    shapes |= {"time_embed.2.weight": (emb, emb), "time_embed.2.bias": (emb,)}
    shapes |= {"input_blocks.0.0.weight": (mc, 3, 3, 3), "input_blocks.0.0.bias": (mc,)}
    chans, ch, size, index = [mc], mc, image_size, 1
    for level, mult in enumerate(cfg.channel_mult):
        for _ in range(cfg.num_res_blocks):
            shapes |= resblock(f"input_blocks.{index}.0", ch, mult * mc, emb)
            ch = mult * mc
            if size in cfg.attention_resolutions:
                shapes |= transformer(f"input_blocks.{index}.1", ch, context)
            chans.append(ch)
            index += 1
        if level != len(cfg.channel_mult) - 1:
            shapes |= {f"input_blocks.{index}.0.op.weight": (ch, ch, 3, 3)}
            shapes |= {f"input_blocks.{index}.0.op.bias": (ch,)}
            chans.append(ch)
            index, size = index + 1, size // 2
    shapes |= resblock("middle_block.0", ch, ch, emb) | transformer("middle_block.1", ch, context)
    shapes |= resblock("middle_block.2", ch, ch, emb)
    index = 0
    for level, mult in reversed(list(enumerate(cfg.channel_mult))):
        for i in range(cfg.num_res_blocks + 1):
            shapes |= resblock(f"output_blocks.{index}.0", ch + chans.pop(), mc * mult, emb)
            ch, j = mc * mult, 1
            if size in cfg.attention_resolutions:
                shapes |= transformer(f"output_blocks.{index}.1", ch, context)
                j = 2
            if level and i == cfg.num_res_blocks:
                shapes |= {f"output_blocks.{index}.{j}.conv.weight": (ch, ch, 3, 3)}
                shapes |= {f"output_blocks.{index}.{j}.conv.bias": (ch,)}
                size *= 2
            index += 1
    shapes |= {"out.0.weight": (ch,), "out.0.bias": (ch,)}
    return shapes | {"out.2.weight": (6, ch, 3, 3), "out.2.bias": (6,)}


def random_state(shapes, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(shape, generator=g) * 0.2 for k, shape in shapes.items()}


CFG = converted_config(resolve_config("tiny"))


def test_every_original_tensor_maps_and_every_unet_tensor_is_filled():
    original = random_state(original_layout(CFG.model, CFG.data.image_size))
    unet = build_model(CFG.model, CFG.data.image_size, "content")
    conversion = convert_content_state(original | {"discriminator.w": torch.ones(1)}, unet, "x")
    assert {a for a, _ in conversion.mapped} == set(original)
    assert conversion.dropped == ["discriminator.w"]
    assert sorted(conversion.filled) == ["null_image", "null_text"]
    assert set(conversion.state) == set(unet.state_dict())
    unet.load_state_dict(conversion.state)  # strict
    assert "input_blocks.0.0.weight  ->  conv_in.weight" in conversion.table()
    with pytest.raises(InputError, match="unknown key 'label_emb.weight'"):
        convert_content_state(original | {"label_emb.weight": torch.ones(1)}, unet, "x")
    shrunk = original | {"out.2.bias": torch.ones(3)}
    with pytest.raises(InputError, match="'out.2.bias' has shape"):
        convert_content_state(shrunk, unet, "x")
    with pytest.raises(InputError, match="have no value"):
        convert_content_state({k: v for k, v in original.items() if k != "out.2.bias"}, unet, "x")


def test_converted_blocks_compute_the_originals_resblock_and_spatial_transformer():
    original = random_state(original_layout(CFG.model, CFG.data.image_size), seed=1)
    unet = build_model(CFG.model, CFG.data.image_size, "content").eval()
    unet.load_state_dict(convert_content_state(original, unet, "x").state)
    g = torch.Generator().manual_seed(2)
    groups = CFG.model.norm_groups

    # ResBlock input_blocks.3.0 (8 -> 16 channels, with a skip conv), written out by hand.
    o = {k[len("input_blocks.3.0.") :]: v for k, v in original.items() if "input_blocks.3.0." in k}
    x, emb = torch.randn(2, 8, 8, 8, generator=g), torch.randn(2, 32, generator=g)
    h = F.silu(F.group_norm(x, groups, o["in_layers.0.weight"], o["in_layers.0.bias"]))
    h = F.conv2d(h, o["in_layers.2.weight"], o["in_layers.2.bias"], padding=1)
    scale, shift = F.linear(F.silu(emb), o["emb_layers.1.weight"], o["emb_layers.1.bias"]).chunk(
        2, 1
    )
    h = F.group_norm(h, groups, o["out_layers.0.weight"], o["out_layers.0.bias"])
    h = F.silu(h * (1 + scale[..., None, None]) + shift[..., None, None])
    h = F.conv2d(h, o["out_layers.3.weight"], o["out_layers.3.bias"], padding=1)
    expected = F.conv2d(x, o["skip_connection.weight"], o["skip_connection.bias"]) + h
    with torch.no_grad():
        torch.testing.assert_close(unet.input_blocks[2].res(x, emb), expected, atol=1e-5, rtol=1e-5)

    # The spatial transformer of the middle block, the original's form on [text ; image].
    o = {k[len("middle_block.1.") :]: v for k, v in original.items() if "middle_block.1." in k}
    t = {k[len("transformer_blocks.0.") :]: v for k, v in o.items() if "transformer_blocks" in k}
    frames, c, d = 2, 16, CFG.model.context_dim
    x = torch.randn(frames, c, 4, 4, generator=g)
    context = torch.randn(frames, 6, d, generator=g)  # 5 text tokens, then the image token
    block = unet.middle_blocks[0].attn.blocks[0]

    def attention(name, q_in, kv):
        layer = torch.nn.Module()
        layer.to_q = lambda v: F.linear(v, t[f"{name}.to_q.weight"])
        layer.to_k = lambda v: F.linear(v, t[f"{name}.to_k.weight"])
        layer.to_v = lambda v: F.linear(v, t[f"{name}.to_v.weight"])
        layer.to_out = lambda v: F.linear(
            v, t[f"{name}.to_out.0.weight"], t[f"{name}.to_out.0.bias"]
        )
        return manual_attention(layer, CFG.model.num_heads, q_in, kv)

    def norm(n, v):
        return F.layer_norm(v, (c,), t[f"norm{n}.weight"], t[f"norm{n}.bias"])

    h = F.group_norm(x, groups, o["norm.weight"], o["norm.bias"], eps=1e-6)
    h = F.conv2d(h, o["proj_in.weight"], o["proj_in.bias"]).flatten(2).transpose(1, 2)
    first = norm(1, h)[:1].expand(frames, -1, -1)  # frame 0's keys and values
    h = attention("attn1", norm(1, h), first) + h
    text = attention("attn2", norm(2, h), context[:, :-1]) + h
    image = attention("attn2", norm(2, h), context[:, -1:]) + h
    h = text + image
    value, gate = F.linear(norm(3, h), t["ff.net.0.proj.weight"], t["ff.net.0.proj.bias"]).chunk(
        2, -1
    )
    h = F.linear(value * F.gelu(gate), t["ff.net.2.weight"], t["ff.net.2.bias"]) + h
    h = h.transpose(1, 2).unflatten(2, (4, 4))
    expected = F.conv2d(h, o["proj_out.weight"], o["proj_out.bias"]) + x
    from tia2v.models.attention import FrameTokens

    tokens = FrameTokens(
        frames,
        context[:, :-1],
        torch.ones(frames, 5, dtype=torch.bool),
        context[:, -1:],
        torch.ones(frames, dtype=torch.bool),
        None,
    )
    assert block.separate
    with torch.no_grad():
        torch.testing.assert_close(
            unet.middle_blocks[0].attn(x, tokens), expected, atol=1e-5, rtol=1e-5
        )


def test_convert_original_writes_a_model_folder_that_generates(tmp_path, tiny_clip_text_dir):
    vision = tiny_clip_vision(projection_dim=32, layers=1)  # the model's 32-d context
    vision.save_pretrained(tmp_path / "vision")
    base = apply_overrides(
        resolve_config("tiny"),
        [
            "encoders.text=clip",
            f"encoders.text_path={tiny_clip_text_dir}",
            "encoders.image=clip",
            f"encoders.image_path={tmp_path / 'vision'}",
        ],
    )
    original = random_state(original_layout(base.model, base.data.image_size), seed=3)
    torch.save(original, tmp_path / "model420000.pt")
    table = convert(tmp_path / "model420000.pt", base, tmp_path / "converted")
    assert "ff.net.2.weight  ->" in table
    pipe = TIA2VPipeline.from_pretrained(tmp_path / "converted", "cpu")
    assert pipe.cfg.model.cross_attention == "separate" and pipe.cfg.data.value_range == 0.5
    card = (tmp_path / "converted" / "README.md").read_text()
    assert "sha256" in card and "null_text" in card
    out = pipe(text="a red circle", num_inference_steps=2)
    assert out.frames.shape == (4, 16, 16, 3)
    with pytest.raises(InputError, match="already exists"):
        convert(tmp_path / "model420000.pt", base, tmp_path / "converted")
    minilm = resolve_config("tiny")  # MiniLM's 384-d tokens need a trained projection
    with pytest.raises(InputError, match="trainable parts"):
        convert(tmp_path / "model420000.pt", minilm, tmp_path / "other")


def test_a_motion_checkpoint_is_refused_in_one_line(tmp_path):
    torch.save(
        {"input_blocks.1.2.temporal_transformer.norm.weight": torch.ones(2)}, tmp_path / "m.pt"
    )
    torch.save({"x": torch.ones(1)}, tmp_path / "c.pt")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tia2v",
            "convert-original",
            "--content",
            str(tmp_path / "c.pt"),
            "--motion",
            str(tmp_path / "m.pt"),
            "-o",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "two temporal transformers per attention site" in lines[0]
    assert not (tmp_path / "out").exists()
