"""The shared pipeline every dataset goes through: class picks, deterministic subsets, label
noise, standardization, unit-ball scaling, target encoding and per-batch resizing."""

from __future__ import annotations

import pytest
import torch

from sgdlab.build import resolve
from sgdlab.config import load_config
from sgdlab.data import RawData, build_dataset
from sgdlab.data.pipeline import add_label_noise, pick_classes, prepare
from sgdlab.errors import ConfigError


def data_cfg(name: str = "digits", **options):
    return resolve(load_config(raw={"data": {"name": name, **options}})).data


def raw_images(n_train: int = 64, n_test: int = 16, channels: int = 3) -> RawData:
    """Images whose channels have very different means and scales."""
    gen = torch.Generator().manual_seed(0)
    scale = torch.tensor([1.0, 5.0, 0.5])[:channels].view(1, -1, 1, 1)
    shift = torch.tensor([0.0, -3.0, 2.0])[:channels].view(1, -1, 1, 1)

    def draw(n):
        return torch.rand(n, channels, 6, 6, generator=gen) * scale + shift

    return RawData(
        draw(n_train), torch.arange(n_train) % 4, draw(n_test), torch.arange(n_test) % 4, n_classes=4
    )


# ---------------------------------------------------------------------------------------
# label noise


def test_label_noise_replaces_exactly_round_p_n_labels_uniformly():
    n, k, p = 200_000, 10, 0.3
    y = torch.arange(n) % k
    gen = torch.Generator().manual_seed(1)
    noisy, chosen = add_label_noise(y, p, k, gen)
    assert chosen.numel() == round(p * n) and chosen.unique().numel() == chosen.numel()
    untouched = torch.ones(n, dtype=torch.bool)
    untouched[chosen] = False
    assert torch.equal(noisy[untouched], y[untouched])
    counts = torch.bincount(noisy[chosen], minlength=k).double()
    expected = chosen.numel() / k
    chi2 = ((counts - expected) ** 2 / expected).sum()
    assert chi2 < 27.9  # 9 degrees of freedom, p = 0.001
    # uniform over all classes, the old one included (Zhang et al. 2017)
    same = (noisy[chosen] == y[chosen]).double().mean()
    assert abs(same - 1 / k) < 0.01
    # the chosen points are a uniform draw too: every class of the clean labels is hit equally
    hit = torch.bincount(y[chosen], minlength=k).double()
    assert ((hit - expected) ** 2 / expected).sum() < 27.9


def test_label_noise_through_the_pipeline_keeps_the_rest():
    clean = build_dataset(data_cfg(n_train=1297), seed=3)
    noisy = build_dataset(data_cfg(n_train=1297, label_noise=0.25), seed=3)
    idx = noisy.meta["noisy_indices"]
    assert idx.numel() == round(0.25 * 1297) == 324
    assert torch.equal(clean.train.x, noisy.train.x)  # noise is drawn after the subsets
    keep = torch.ones(1297, dtype=torch.bool)
    keep[idx] = False
    assert torch.equal(clean.train.y[keep], noisy.train.y[keep])
    assert (clean.train.y[idx] != noisy.train.y[idx]).float().mean() > 0.8  # ≈ 9/10 change
    assert torch.equal(clean.test.y, noisy.test.y)
    assert "noisy_indices" not in clean.meta


def test_label_noise_needs_labels():
    with pytest.raises(ConfigError, match="data.label_noise: least-squares has no labels"):
        build_dataset(data_cfg("least-squares", label_noise=0.1), 0)


# ---------------------------------------------------------------------------------------
# classes, subsets, targets


def test_pick_classes_keeps_and_relabels_in_the_order_given():
    x = torch.arange(8.0).view(8, 1)
    y = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    xs, ys = pick_classes(x, y, (3, 1))
    assert xs.flatten().tolist() == [1, 3, 5, 7] and ys.tolist() == [1, 0, 1, 0]


def test_classes_through_the_pipeline():
    full = build_dataset(data_cfg(standardize=False), 0)
    two = build_dataset(data_cfg(classes=[7, 3], standardize=False), 0)
    assert two.n_classes == 2 and two.n_outputs == 2
    assert torch.bincount(two.train.y).tolist() == [(full.train.y == 7).sum(), (full.train.y == 3).sum()]
    assert torch.equal(two.train.x, full.train.x[(full.train.y == 7) | (full.train.y == 3)])
    for bad in ([3], [3, 3], [3, 10], [-1, 2]):
        with pytest.raises(ConfigError, match="data.classes"):
            build_dataset(data_cfg(classes=bad), 0)
    with pytest.raises(ConfigError, match="least-squares has no classes"):
        build_dataset(data_cfg("least-squares", classes=[0, 1]), 0)


def test_subsets_are_deterministic_from_the_seed():
    a = build_dataset(data_cfg(n_train=100, n_test=30), seed=0)
    b = build_dataset(data_cfg(n_train=100, n_test=30), seed=0)
    c = build_dataset(data_cfg(n_train=100, n_test=30), seed=1)
    d = build_dataset(data_cfg(n_train=100, n_test=30, seed=1), seed=0)  # data.seed wins
    assert len(a.train) == 100 and len(a.test) == 30
    assert torch.equal(a.train.x, b.train.x) and torch.equal(a.test.y, b.test.y)
    assert not torch.equal(a.train.x, c.train.x) and not torch.equal(a.test.x, c.test.x)
    assert torch.equal(c.train.x, d.train.x)
    with pytest.raises(ConfigError, match="data.n_train: 100 is more than the 64 points"):
        prepare(raw_images(n_train=64), data_cfg(n_train=100), torch.Generator())


def test_onehot_and_pm1_targets():
    index = build_dataset(data_cfg(n_train=200), 0)
    onehot = build_dataset(data_cfg(n_train=200, targets="onehot"), 0)
    assert onehot.train.y.shape == (200, 10) and onehot.train.y.dtype == torch.float32
    assert torch.equal(onehot.train.y.argmax(dim=1), index.train.y)
    assert torch.equal(onehot.train.y.sum(dim=1), torch.ones(200))
    assert onehot.n_outputs == 10

    pair = build_dataset(data_cfg(classes=[4, 9]), 0)
    pm1 = build_dataset(data_cfg(classes=[4, 9], targets="pm1"), 0)
    assert pm1.target_kind == "pm1" and pm1.n_outputs == 1
    assert set(pm1.train.y.tolist()) == {-1.0, 1.0}
    assert torch.equal(pm1.train.y, pair.train.y.float() * 2 - 1)
    with pytest.raises(ConfigError, match="'pm1' needs exactly two classes, digits has 10"):
        build_dataset(data_cfg(targets="pm1"), 0)


# ---------------------------------------------------------------------------------------
# input scaling and resizing


def test_standardize_gives_per_channel_mean_0_std_1():
    cfg = data_cfg(standardize=True)
    data = prepare(raw_images(), cfg, torch.Generator().manual_seed(0))
    x = data.train.x
    assert torch.allclose(x.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5)
    assert torch.allclose(x.std(dim=(0, 2, 3)), torch.ones(3), atol=1e-5)
    # the test split uses the training statistics, not its own
    assert not torch.allclose(data.test.x.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5)
    vectors = build_dataset(data_cfg("gaussian-mixture", standardize=True, dim=5), 0).train.x
    assert torch.allclose(vectors.mean(dim=0), torch.zeros(5), atol=1e-5)
    assert torch.allclose(vectors.std(dim=0), torch.ones(5), atol=1e-5)


def test_standardize_defaults_yes_for_images_no_for_synthetic():
    assert data_cfg("digits").standardize is True
    assert data_cfg("cifar10").standardize is True
    assert data_cfg("moons").standardize is False
    raw = build_dataset(data_cfg("digits", standardize=False), 0).train.x
    assert raw.min() == 0 and raw.max() == 1


@pytest.mark.parametrize("name", ["digits", "gaussian-mixture"])
def test_unit_ball_scaling(name):
    data = build_dataset(data_cfg(name, normalize="unit-ball"), 0)
    train, test = data.train.x.flatten(1).norm(dim=1), data.test.x.flatten(1).norm(dim=1)
    assert train.max().item() == pytest.approx(1.0, abs=1e-6)
    assert (train <= 1 + 1e-6).all() and (test <= 1 + 1e-6).all()
    # one common scale for the training points: ratios of norms are kept
    plain = build_dataset(data_cfg(name), 0).train.x.flatten(1).norm(dim=1)
    assert torch.allclose(train / train[0], plain / plain[0], rtol=1e-5)


def test_resize_happens_per_batch():
    data = build_dataset(data_cfg(n_train=40, resize=16), 0)
    assert data.train.x.shape == (40, 1, 8, 8)  # stored at the original size
    assert data.input_shape == (1, 16, 16)
    x, y = data.batch(data.train, torch.arange(5))
    assert x.shape == (5, 1, 16, 16) and y.shape == (5,)
    x, _ = data.batch(data.test, slice(0, 3))
    assert x.shape == (3, 1, 16, 16)
