"""The lecture's toys in `sgdlab.toys`: public, on one torch thread by default, and the closed
forms the lecture states (the reproduction's claims are tested in test_qualitative_sgd.py)."""

from __future__ import annotations

import pytest
import torch

from sgdlab import toys


@pytest.mark.parametrize("threads", [1, None])
def test_simulations_run_on_one_thread_unless_told_otherwise(threads, monkeypatch):
    seen = []
    draw = torch.randint

    def watching(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return draw(*args, **kwargs)

    monkeypatch.setattr(torch, "randint", watching)
    torch.set_num_threads(2)
    try:
        toys.simulate_noise_ball(toys.NoiseBall(), runs=4, steps=3, seed=0, threads=threads)
        toys.simulate_escape(toys.Escape(), (1, 4), runs=4, steps=3, seed=0, threads=threads)
        assert torch.get_num_threads() == 2  # put back
    finally:
        torch.set_num_threads(1)
    assert set(seen) == ({1} if threads == 1 else {2})


def test_the_closed_forms_of_the_pair_and_the_escape():
    xs = toys.simulate_pair(0.83, 0.07, 1.0, 2000)
    assert abs(xs[-1]) == pytest.approx(toys.pair_amplitude(0.83, 0.07), rel=1e-9)
    e = toys.Escape()
    x_left = torch.tensor(e.x_left, dtype=torch.float64)
    assert float(x_left - e.step * e.grads(x_left)[3]) == pytest.approx(2.185)  # past the barrier
    assert float(e.grads(torch.tensor(e.x_right, dtype=torch.float64)).abs().max()) == 0.0
