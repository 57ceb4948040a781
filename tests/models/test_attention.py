import torch

from tests.helpers import manual_attention
from tia2v.models.attention import FrameTokens, SpatialTransformerBlock

DIM, HEADS, CONTEXT = 16, 2, 8


def block_and_tokens(cross_attention, image_given, num_image=1):
    torch.manual_seed(0)
    block = SpatialTransformerBlock(DIM, HEADS, CONTEXT, cross_attention).eval()
    g = torch.Generator().manual_seed(1)
    frames = 3
    tokens = FrameTokens(
        num_frames=frames,
        text=torch.randn(2 * frames, 5, CONTEXT, generator=g),
        text_mask=torch.tensor([[True] * 5] * frames + [[True] * 3 + [False] * 2] * frames),
        image=torch.randn(2 * frames, num_image, CONTEXT, generator=g),
        image_given=torch.tensor(image_given).repeat_interleave(frames),
        audio=None,
    )
    x = torch.randn(2 * frames, 6, DIM, generator=g)
    return block, tokens, x


def test_separate_cross_attention_is_the_originals_form():
    block, tokens, x = block_and_tokens("separate", [True, True])
    with torch.no_grad():
        h = block.norm1(x)
        first = h.unflatten(0, (2, 3))[:, :1].expand(-1, 3, -1, -1).flatten(0, 1)
        x1 = x + manual_attention(block.self_attn, HEADS, h, first)
        h2 = block.norm2(x1)
        x_text = manual_attention(block.cross_attn, HEADS, h2, tokens.text, tokens.text_mask) + x1
        x_image = manual_attention(block.cross_attn, HEADS, h2, tokens.image) + x1
        summed = x_text + x_image  # the residual counted twice, as the original does
        expected = summed + block.ff(block.norm3(summed))
        torch.testing.assert_close(block(x, tokens), expected, atol=1e-5, rtol=1e-5)
        joint = SpatialTransformerBlock(DIM, HEADS, CONTEXT, "joint").eval()
        joint.load_state_dict(block.state_dict())
        assert (joint(x, tokens) - block(x, tokens)).abs().max() > 1e-2


def test_without_the_image_both_forms_attend_to_the_text_alone():
    separate, tokens, x = block_and_tokens("separate", [False, True])
    joint = SpatialTransformerBlock(DIM, HEADS, CONTEXT, "joint").eval()
    joint.load_state_dict(separate.state_dict())
    text_only = FrameTokens(
        tokens.num_frames,
        tokens.text,
        tokens.text_mask,
        tokens.image[:, :0],  # no image token at all
        tokens.image_given,
        None,
    )
    with torch.no_grad():
        out = separate(x, tokens)
        torch.testing.assert_close(out[:3], joint(x, text_only)[:3], atol=1e-5, rtol=1e-5)
        assert not torch.allclose(out[3:], joint(x, text_only)[3:], atol=1e-3)  # the image is on
