"""Model zoo: the parameter counts the papers pin, one SGD step for every registered model (also
in channels-last memory format), and the structure each option promises."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from sgdlab.build import build_model_seeded, resolve
from sgdlab.config import load_config
from sgdlab.errors import ConfigError
from sgdlab.models import count_params, models
from sgdlab.models.alexnet import tf_lrn
from sgdlab.models.layers import MaxPoolSame
from sgdlab.models.residual_mlp import ResidualDense
from sgdlab.models.resnet import BasicBlock

CONV_NETS = ("lenet", "alexnet", "alexnet-small", "vgg11", "vgg16", "resnet18", "resnet34")
# Narrow variants for the step test; every model not listed gets {"width": 4} if it reads width.
SMALL = {"mlp": {"widths": [8]}, "alexnet": {"width": 8}, "vgg11": {"width": 4, "batch_norm": "all"}}
SIDE = {"alexnet": 195}  # the smallest input its valid convs and pools do not collapse


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One torch thread: the machine is shared, and nothing here depends on the count."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def config(name: str, **options):
    return resolve(load_config(raw={"model": {"name": name, **options}}))


def build(name: str, shape: tuple[int, ...] = (3, 32, 32), n_outputs: int = 10, **options) -> nn.Module:
    return build_model_seeded(config(name, **options), shape, n_outputs)


def count(model: nn.Module, kind: type) -> int:
    return sum(isinstance(m, kind) for m in model.modules())


# ---------------------------------------------------------------------------------------
# Parameter counts pinned by the papers (construction only, no big forwards)


@pytest.mark.parametrize(
    "name, shape, options, expected",
    [
        ("lenet", (3, 32, 32), {}, 121_802),  # seed 000 base model
        ("alexnet", (3, 224, 224), {}, 21_622_154),  # seed 000
        ("vgg16", (3, 32, 32), {}, 37_704_258),  # seed 000 (fc4096 head, no BN)
        ("alexnet-small", (3, 28, 28), {}, 1_387_786),  # Zhang et al. 2017, Table 1
        ("resnet18", (3, 32, 32), {}, 11_173_962),  # the usual CIFAR ResNets
        ("resnet34", (3, 32, 32), {}, 21_282_122),
        ("vgg11", (3, 32, 32), {"batch_norm": "all"}, 9_231_114),  # the usual CIFAR VGG-BN
        ("vgg16", (3, 32, 32), {"batch_norm": "all", "head": "linear"}, 14_728_266),
    ],
)
def test_parameter_counts(name, shape, options, expected):
    assert count_params(build(name, shape, 10, **options)) == expected


def test_alexnet_at_224_runs_and_flattens_256_features():
    model = build("alexnet", (3, 224, 224), 10).eval()
    assert model.classifier[0].in_features == 256
    with torch.no_grad():
        assert model(torch.randn(1, 3, 224, 224)).shape == (1, 10)


# ---------------------------------------------------------------------------------------
# Conformance: every registered model trains one SGD step


def small_options(name: str) -> dict:
    if name in SMALL:
        return SMALL[name]
    return {"width": 4} if "width" in models.get(name).options else {}


def flat(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])  # any memory format


def sgd_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, torch.Tensor]:
    before = flat(model).clone()
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    with torch.no_grad():
        for p in model.parameters():
            p -= 0.1 * p.grad
    return loss.item(), flat(model) - before


@pytest.mark.parametrize(
    "name, layout",
    [
        (e.name, layout)
        for e in models
        for layout in ("contiguous", "channels_last")
        if layout == "contiguous" or e.extra.get("channels_last")
    ],
)
def test_every_model_trains_one_sgd_step(name, layout):
    side = SIDE.get(name, 32)
    model = build(name, (3, side, side), 3, **small_options(name))
    x, y = torch.randn(4, 3, side, side), torch.tensor([0, 1, 2, 0])
    if layout == "channels_last":
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    loss, change = sgd_step(model, x, y)
    assert math.isfinite(loss)
    assert change.abs().max() > 0


CHANNELS_LAST = [e.name for e in models if e.extra.get("channels_last")]


@pytest.mark.parametrize("name", CHANNELS_LAST)
def test_channels_last_gives_the_same_gradients(name):
    """With tanh, so that no ReLU mask or pooling tie flips on a rounding difference (with
    ReLU, deep narrow BN nets do differ by up to 10% in some draws — in either layout
    against float64)."""
    options = dict(small_options(name))
    if "activation" in models.get(name).options:
        options["activation"] = "tanh"
    side = SIDE.get(name, 32)
    model = build(name, (3, side, side), 3, **options)
    reference = copy.deepcopy(model)
    x, y = torch.randn(4, 3, side, side), torch.tensor([0, 1, 2, 0])
    reference_loss, _ = sgd_step(reference, x, y)
    loss, _ = sgd_step(
        model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last), y
    )
    assert loss == pytest.approx(reference_loss, rel=1e-5)
    scale = torch.cat([q.grad.reshape(-1) for q in reference.parameters()]).norm()
    for (where, p), q in zip(model.named_parameters(), reference.parameters(), strict=True):
        # slack for gradients that are 0 up to rounding, like conv biases before a BN
        assert (p.grad - q.grad).norm() <= 1e-3 * q.grad.norm() + 1e-5 * scale, where


def test_conv_nets_are_flagged_channels_last():
    flagged = {e.name for e in models if e.extra.get("channels_last")}
    assert set(CONV_NETS) <= flagged
    assert not flagged & {"linear", "mlp", "residual-mlp"}


def test_same_seed_same_parameters():
    a, b = build("lenet", width=8), build("lenet", width=8)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


# ---------------------------------------------------------------------------------------
# Option semantics, checked on the structure


@pytest.mark.parametrize(
    "name, batch_norm, expected",
    [
        ("resnet18", "all", 1 + 2 * 8 + 3),  # stem, two per BasicBlock, three projections
        ("resnet18", "first-in-block", 1 + 4),  # stem and the first of each stage
        ("resnet18", "none", 0),
        ("resnet34", "all", 1 + 2 * 16 + 3),
        ("resnet34", "first-in-block", 1 + 4),
        ("vgg11", "all", 8),
        ("vgg11", "first-in-block", 5),  # the first conv of each of the 5 stages
        ("vgg11", "none", 0),
        ("vgg16", "first-in-block", 5),
    ],
)
def test_batch_norm_counts(name, batch_norm, expected):
    assert count(build(name, width=4, batch_norm=batch_norm), nn.BatchNorm2d) == expected


def test_first_in_block_batch_norm_follows_the_first_conv_of_each_stage():
    features = build("vgg11", width=4, batch_norm="first-in-block").features
    layers = list(features)
    after_bn = [layers[i - 1] for i, m in enumerate(layers) if isinstance(m, nn.BatchNorm2d)]
    convs = [m for m in layers if isinstance(m, nn.Conv2d)]
    assert after_bn == [convs[i] for i in (0, 1, 2, 4, 6)]  # stages (1, 1, 2, 2, 2) convs


@pytest.mark.parametrize(
    "skips, with_skip, projections",
    [("all", 16, 3), ("first-in-block", 4, 3), ("first-two-in-block", 8, 3), ("none", 0, 0)],
)
def test_resnet34_skip_counts(skips, with_skip, projections):
    model = build("resnet34", width=4, skips=skips)
    blocks = [m for m in model.modules() if isinstance(m, BasicBlock)]
    assert len(blocks) == 16
    assert sum(b.shortcut is not None for b in blocks) == with_skip
    assert sum(isinstance(b.shortcut, nn.Sequential) for b in blocks) == projections
    # stage sizes (3, 4, 6, 3): the kept skips are the first of each stage
    starts = {0, 3, 7, 13}
    if skips == "first-in-block":
        assert {i for i, b in enumerate(blocks) if b.shortcut is not None} == starts


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_projection_shortcut_is_a_strided_1x1_conv(layout):
    """Subsample + 1x1 conv == 1x1 conv of stride 2, also in channels-last with 4 input
    channels, the case where oneDNN's own strided kernel corrupts memory on AVX2 CPUs."""
    model = build("resnet18", width=4).to(memory_format=layout)
    block = next(
        m for m in model.modules() if isinstance(m, BasicBlock) and isinstance(m.shortcut, nn.Sequential)
    )
    subsample, conv = block.shortcut[0], block.shortcut[1]
    x = torch.randn(2, 4, 16, 16).contiguous(memory_format=layout)
    out = conv(subsample(x))
    torch.testing.assert_close(out, nn.functional.conv2d(x, conv.weight, stride=2))
    out.square().sum().backward()
    expected = torch.einsum("nchw,nkhw->kc", x[..., ::2, ::2], 2 * out.detach())
    torch.testing.assert_close(conv.weight.grad[..., 0, 0], expected, rtol=1e-4, atol=1e-4)


def test_resnet_without_skips_still_runs():
    model = build("resnet18", width=4, skips="none", batch_norm="none")
    assert model(torch.randn(2, 3, 16, 16)).shape == (2, 10)


@pytest.mark.parametrize("name", [n for n in models.names() if "activation" in models.get(n).options])
def test_activation_swap_leaves_no_relu(name):
    side = SIDE.get(name, 32)
    model = build(name, (3, side, side), 10, **small_options(name), activation="tanh")
    assert count(model, nn.ReLU) == 0 and count(model, nn.Tanh) > 0


def test_leaky_relu_slope():
    model = build("resnet18", width=4, activation="leaky-relu")
    slopes = {m.negative_slope for m in model.modules() if isinstance(m, nn.LeakyReLU)}
    assert slopes == {0.01} and count(model, nn.ReLU) == 0


@pytest.mark.parametrize("name", [n for n in models.names() if "bias" in models.get(n).options])
def test_bias_off_leaves_no_bias(name):
    side = SIDE.get(name, 32)
    options = {k: v for k, v in small_options(name).items() if k != "batch_norm"}  # BN has β
    model = build(name, (3, side, side), 10, **options, bias=False)
    names = [n for n, _ in model.named_parameters()]
    assert names and not [n for n in names if n.endswith("bias")]


def test_width_scales_conv_and_dense_layers():
    lenet = build("lenet", width=16)
    assert lenet.features[0].out_channels == 16 and lenet.classifier[0].out_features == 64
    vgg = build("vgg16", width=32)
    assert [m.out_features for m in vgg.classifier if isinstance(m, nn.Linear)] == [2048, 2048, 500, 10]


def test_dropout_goes_into_the_fc_head():
    model = build("vgg16", width=4, dropout=0.5)
    assert count(model.classifier, nn.Dropout) == 3 and count(model.features, nn.Dropout) == 0


def test_he_init_on_hidden_layers_default_on_the_output():
    model = build("lenet", init="he")
    conv2 = model.features[3]
    assert conv2.weight.std().item() == pytest.approx(math.sqrt(2 / (32 * 16)), rel=0.05)
    assert not conv2.bias.detach().any()
    out = model.classifier[-1]
    assert out.weight.detach().abs().max() <= 1 / math.sqrt(128)  # PyTorch's uniform bound


@pytest.mark.parametrize("spec, residual, plain", [((3, 5), 3, 1), ((15, 25), 15, 1)])
def test_residual_mlp_layers(spec, residual, plain):
    depth, width = spec
    model = build("residual-mlp", (2,), 1, residual_widths=[width] * depth, widths=[2])
    blocks = [m for m in model.modules() if isinstance(m, ResidualDense)]
    projections = [b.shortcut for b in blocks if isinstance(b.shortcut, nn.Linear)]
    weight_layers = len(blocks) + sum(isinstance(m, nn.Linear) for m in model)  # top level
    assert len(blocks) == residual and len(projections) == 1 and blocks[0].shortcut is projections[0]
    assert weight_layers == residual + plain + 1  # "15x25,2,1" has 17
    assert model(torch.randn(5, 2)).shape == (5, 1)


def test_residual_layer_is_identity_plus_activation():
    model = build("residual-mlp", (2,), 1, residual_widths=[4, 4], widths=[2])
    block = model[2]
    with torch.no_grad():
        block.layer.weight.zero_()
        block.layer.bias.fill_(-1.0)  # relu(-1) = 0: only the identity shortcut remains
        h = torch.randn(3, 4)
        torch.testing.assert_close(block(h), h)


def test_residual_mlp_ntk_parametrization():
    model = build("residual-mlp", (2,), 1, parametrization="ntk", sigma=2.0)
    assert model(torch.randn(3, 2)).shape == (3, 1)


# ---------------------------------------------------------------------------------------
# TF semantics of alexnet-small's LRN and SAME pooling, against direct definitions


def test_lrn_matches_tensorflow_definition():
    x = torch.randn(2, 16, 5, 5)
    sq = nn.functional.pad(x * x, (0, 0, 0, 0, 4, 4))  # zero channels outside, radius 4
    sqr_sum = sum(sq[:, d : d + 16] for d in range(9))
    expected = x / (1.0 + (0.001 / 9) * sqr_sum) ** 0.75
    torch.testing.assert_close(tf_lrn()(x), expected)


@pytest.mark.parametrize("n", [7, 8, 16])
def test_max_pool_same_matches_tensorflow(n):
    x = torch.randn(1, 2, n, n)
    total = max((math.ceil(n / 2) - 1) * 2 + 3 - n, 0)
    start = -(total // 2)
    out = math.ceil(n / 2)
    expected = torch.empty(1, 2, out, out)
    for i in range(out):
        for j in range(out):
            r0, c0 = start + 2 * i, start + 2 * j
            window = x[..., max(r0, 0) : r0 + 3, max(c0, 0) : c0 + 3]
            expected[..., i, j] = window.amax(dim=(-2, -1))
    torch.testing.assert_close(MaxPoolSame(3, 2)(x), expected)


# ---------------------------------------------------------------------------------------
# Errors: one line naming the key, the value and what is allowed


@pytest.mark.parametrize(
    "model, match",
    [
        ({"name": "lenet", "skips": "none"}, r"model\.skips: not used by model 'lenet'"),
        ({"name": "vgg11", "skips": "all"}, r"model\.skips: not used by model 'vgg11'"),
        ({"name": "resnet18", "activation": "gelu"}, r"model\.activation: 'gelu' is not one of"),
        ({"name": "resnet18", "dropout": 0.5}, r"model\.dropout: not used by model 'resnet18'"),
    ],
)
def test_resolve_rejects(model, match):
    with pytest.raises(ConfigError, match=match):
        resolve(load_config(raw={"model": model}))


@pytest.mark.parametrize(
    "name, shape, options, match",
    [
        ("vgg16", (3, 32, 32), {"head": "mlp"}, r"model\.head: 'mlp' is not one of linear, fc4096"),
        ("vgg11", (3, 32, 32), {"dropout": 0.5}, r"model\.dropout: 0\.5 needs head = 'fc4096'"),
        ("alexnet", (3, 32, 32), {}, r"'alexnet' needs larger inputs.*data\.resize"),
        ("vgg11", (3, 16, 16), {}, r"'vgg11' needs larger inputs"),
        ("lenet", (64,), {}, r"'lenet' needs image inputs"),
        ("resnet18", (3, 32, 32), {"init": "zeros"}, r"model\.init: 'zeros'"),
        ("residual-mlp", (2,), {"init": "zeros"}, r"model\.init: 'zeros'"),
    ],
)
def test_build_rejects(name, shape, options, match):
    cfg = config(name, **options)
    with pytest.raises(ConfigError, match=match) as error:
        build_model_seeded(cfg, shape, 10)
    assert "\n" not in str(error.value)
