import torch

from tests.helpers import tiny_clip_vision
from tia2v.encoders.image import ClipImageEncoder, PatchImageEncoder, clip_preprocess


def images(batch=2, size=24):
    return torch.rand(batch, 3, size, size + 8, generator=torch.Generator().manual_seed(1)) * 2 - 1


def test_clip_image_embedding_shapes():
    pooled = ClipImageEncoder(tiny_clip_vision())
    out = pooled(images())
    assert out.tokens.shape == (2, 1, 16) and out.mask.all()  # 1 x projection_dim, as the paper
    patches = ClipImageEncoder(tiny_clip_vision(), patch_tokens=True)(images())
    assert patches.tokens.shape == (2, 1 + 16, 16)


def test_clip_sees_rgb_normalised_pixels():
    encoder = ClipImageEncoder(tiny_clip_vision())
    x = images()
    swapped = x[:, [2, 1, 0]]  # BGR, the original metric scripts' mistake
    assert not torch.allclose(encoder(x).tokens, encoder(swapped).tokens)
    pixels = clip_preprocess(torch.ones(1, 3, 10, 20), 32)  # white
    assert pixels.shape == (1, 3, 32, 32)
    expected = (1 - torch.tensor([0.48145466, 0.4578275, 0.40821073])) / torch.tensor(
        [0.26862954, 0.26130258, 0.27577711]
    )
    assert torch.allclose(pixels[0, :, 5, 5], expected, atol=1e-4)


def test_clip_image_is_frozen():
    encoder = ClipImageEncoder(tiny_clip_vision())
    x = images().requires_grad_(True)
    out = encoder(x).tokens
    assert not out.requires_grad and all(
        p.grad is None and not p.requires_grad for p in encoder.parameters()
    )


def test_patch_encoder_is_trainable():
    encoder = PatchImageEncoder(image_size=16, patch_size=4, dim=8)
    out = encoder(torch.rand(2, 3, 16, 16))
    assert out.tokens.shape == (2, 16, 8)
    out.tokens.sum().backward()
    assert encoder.proj.weight.grad is not None
