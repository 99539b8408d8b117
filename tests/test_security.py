"""Files from elsewhere cannot run code: checkpoints load with weights_only (a pickle naming
any other global is refused before anything runs), dataset pickles only through the restricted
unpickler, configs are data."""

from __future__ import annotations

import pickle

import pytest
import torch

import sgdlab
from conftest import tiny
from sgdlab.store import RunDir
from sgdlab.store.files import CorruptCheckpoint, checksum_path


class Payload:
    """Unpickling this would create a file: the proof that loading ran code."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_a_checkpoint_that_would_run_code_is_refused_and_runs_nothing(tmp_path):
    out = tmp_path / "r"
    sgdlab.run(tiny(), out)
    marker = tmp_path / "pwned"
    final = out / "checkpoints" / "final.pt"
    torch.save({"weights": Payload(marker)}, final)  # a hostile file in place of the real one
    checksum_path(final).unlink()
    with pytest.raises(CorruptCheckpoint):
        RunDir(out).load("final.pt")
    assert not marker.exists()


def test_every_checkpoint_a_run_writes_loads_with_weights_only(tmp_path):
    out = tmp_path / "r"
    sgdlab.run(
        tiny(
            checkpoint={"every_steps": 4, "iterates": "epoch"},
            probes={"use": ["eval", "batch_loss", "gamma"], "gamma": {"mode": "store"}},
        ),
        out,
    )
    files = [p for p in (out / "checkpoints").rglob("*.pt")]
    assert len(files) >= 4
    for p in files:
        torch.load(p, weights_only=True)  # raises on anything but tensors and plain values


def test_dataset_pickles_go_through_the_restricted_unpickler(tmp_path):
    from sgdlab.data import safepickle
    from sgdlab.errors import UserError

    marker = tmp_path / "pwned"
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps(Payload(marker)))
    with open(path, "rb") as f, pytest.raises(UserError, match="refused to unpickle"):
        safepickle.load(f, str(path))
    assert not marker.exists()


def test_a_config_string_is_never_code(tmp_path):
    from sgdlab.build import resolve
    from sgdlab.config import load_config
    from sgdlab.errors import ConfigError

    for raw in (
        {"model": {"name": "__import__('os').system('true')"}},
        {"probes": {"use": ["os.system"]}},
        {"optim": {"name": "torch.optim.SGD"}},
    ):
        with pytest.raises(ConfigError, match="is not one of"):
            resolve(load_config(raw=raw))
