"""θ as a flat vector or as the model's tensors: distances and norms without flat copies agree
with the naive ones, for contiguous and channels-last parameters, across chunk boundaries."""

from __future__ import annotations

import pytest
import torch

from sgdlab import params


@pytest.fixture
def tensors():
    gen = torch.Generator().manual_seed(0)
    conv = torch.randn(8, 3, 5, 5, generator=gen).to(memory_format=torch.channels_last)
    return [conv, torch.randn(params.CHUNK + 17, generator=gen), torch.randn(3, 4, generator=gen)]


def flat(ts):
    return torch.cat([t.reshape(-1) for t in ts])


def test_distance_and_norm_match_the_naive_forms(tensors):
    other = [t * 0.5 + 1 for t in tensors]
    expected = float(torch.linalg.vector_norm((flat(tensors) - flat(other)).double()))
    for a, b in (
        (tensors, other),
        (flat(tensors), other),
        (tensors, flat(other)),
        (flat(tensors), flat(other)),
    ):
        assert params.distance(a, b) == pytest.approx(expected, rel=1e-6)
    size, dist = params.norm_and_distance(tensors, other)
    assert size == pytest.approx(float(torch.linalg.vector_norm(flat(tensors))), rel=1e-6)
    assert dist == pytest.approx(expected, rel=1e-6)
    assert params.distance(tensors, tensors) == 0.0


def test_the_norm_probes_match_the_saved_iterates(tmp_path):
    import sgdlab
    from conftest import tiny
    from sgdlab.store import RunDir

    result = sgdlab.run(
        tiny(
            probes={
                "use": ["norms", "update_norm"],
                "norms": {"schedule": "step"},
                "update_norm": {"schedule": "step"},
            },
            train={"epochs": 1},
            checkpoint={"iterates": "step"},
        ),
        tmp_path / "r",
    )
    run_dir = RunDir(tmp_path / "r")
    thetas = torch.stack([run_dir.load(f"iterates/{p.name}") for _, p in run_dir.iterates()])
    m = result.metrics
    dist = torch.linalg.vector_norm(thetas - thetas[0], dim=1)
    assert m["dist_init"].to_pylist() == pytest.approx(dist.tolist(), rel=1e-5, abs=1e-7)
    assert m["param_norm"].to_pylist() == pytest.approx(
        torch.linalg.vector_norm(thetas, dim=1).tolist(), rel=1e-6
    )
    steps = torch.linalg.vector_norm(thetas[1:] - thetas[:-1], dim=1) / 0.1
    assert m["update_norm"].to_pylist()[:-1] == pytest.approx(steps.tolist(), rel=1e-4)
