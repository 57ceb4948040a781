import torch
from torch import nn

from tia2v.training.ema import EMA


def test_warmup_copies_then_averages():
    layer = nn.Linear(2, 2, bias=False)
    ema = EMA(layer, decay=0.5, warmup=1)
    with torch.no_grad():
        layer.weight.fill_(1.0)
    ema.update(layer, step=0)  # warm-up: a plain copy
    assert torch.equal(ema.shadow["weight"], torch.ones(2, 2))
    with torch.no_grad():
        layer.weight.fill_(3.0)
    ema.update(layer, step=5)  # min(0.5, 5/14) = 5/14 of the old value stays
    assert torch.allclose(ema.shadow["weight"], torch.full((2, 2), 1 * 5 / 14 + 3 * 9 / 14))


def test_shadows_follow_the_weights_to_another_device():
    layer = nn.Linear(2, 2)
    ema = EMA(layer, decay=0.9).to(torch.device("meta"))
    assert {v.device.type for v in ema.shadow.values()} == {"meta"}
    assert set(ema.shadow) == {"weight", "bias"}


def test_one_fused_update_equals_a_lerp_per_trained_parameter():
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    module[0].weight.requires_grad_(False)  # frozen: not averaged
    ema = EMA(module, decay=0.9)
    expected = {name: value.clone() for name, value in ema.shadow.items()}
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.add_(1.0)
    ema.update(module, step=100)
    rate = ema.rate(100)
    trained = dict(module.named_parameters())
    assert set(ema.shadow) == {"0.bias", "2.weight", "2.bias"}
    for name, old in expected.items():
        assert torch.allclose(ema.shadow[name], rate * old + (1 - rate) * trained[name])
