"""What `qualitative-sgd` runs at each scale.

smoke  seconds (the test suite): every part, few runs and epochs
cpu    ≤ 15 min on 2 cores: the lecture's sizes where they are small (least squares 200×100 vs
       200×1000, the 3x5,2,1 and 15x25,2,1 nets), fewer epochs for the nets
full   the lecture's settings (1000 epochs of single-sample SGD on the nets), more runs

Assumed where the lecture is silent (each stated in the claims' evidence too):
  noise ball  c_1 = (1, 0.2), c_2 = (−0.6, 0.9), c_3 = −c_1 − c_2; x_0 = (6, 4)
  pair        f_{1,2} = ½(x ∓ c), x_0 = 1; "loss" = f − f* = x²
  least sq.   A Gaussian, b = A·x_true + 100·ε (the dataset's noise; b is then Gaussian, almost
              independent of A), rows scaled into the unit ball (a global rescaling, so the steps
              0.5 … 0.125 are stable), θ_0 = 0 (SGD stays in the row space: the limit of an
              interpolating run is the minimum-norm solution A⁺b), float64, indices drawn iid
              (the lecture's sampling). The floor's slowest mode relaxes in 1/(2γλ_min(AᵀA/N))
              steps, ≈ 46 epochs at γ = 0.125 for the cpu problem: the 150 epochs before the
              averaging window are > 3 such times (the claim checks stationarity itself)
  nets        two interleaved spirals (2-D, binary, ±1 labels), logistic loss, single-sample SGD,
              the lecture's combined rule γ0 = α = 0.1, ψ(x) = 0.5√x, K = 50 epochs for part 4;
              He initialization (its 15 identity-shortcut layers amplify the signal, so the initial
              gradients are large, as in the lecture's tables: ‖∇f(x_0)‖ ≈ 1e3 here, 6.8e5 there).
              "3x5,2,1" is read as residual layers of widths 5, 5, 5 and 2 (the width-2 layer with
              a projection shortcut), then the output: with a plain ReLU width-2 layer
              (`widths = [2]`) single-sample SGD killed both of its units within the first epoch
              in every setting tried (default, He and NTK-normal inits, steps 0.001–0.1, constant,
              damped and combined rules, moons and spirals), leaving the constant predictor
              (loss ln 2); full-batch Adam could fit it with He init only.
              Training points: the lecture's regime needs the 3x5,2,1 net unable to interpolate
              (a premise, `nets/regime`). With 100 spiral points it does interpolate (0 training
              error, loss 0.002 after 300 epochs); with 200 (and with 400) it stalls at 2%
              training error after 300 epochs, its errors at the spirals' centre (radius < 0.12),
              where the two classes come closest; the 15x25,2,1 net is at 0.5–1% after 240
              epochs at 200 points, hence 400 epochs at cpu scale
  escaping    p(x) = 0.1 (x − 0.8)²(x − 3)², bump width 1, s = (1.5, 0.8, 0.47, −2.77), γ = 0.5,
              start x_L = 0.8 (the lecture's x_k = 0.8)
  μ           an MLP (one hidden layer) on scikit-learn's digits, μ on a fixed set of training points
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ToySettings:
    """The simulated parts: runs and steps of the noise ball and escaping, steps of the 1-D pair."""

    noise_runs: int
    noise_steps: int
    pair_steps: int
    escape_runs: int
    escape_steps: int
    seed: int = 0


@dataclass(frozen=True)
class LeastSquaresSettings:
    """Part 3: n equations, the (under, over)-parameterized widths, the label noise, the data
    seed, epochs; the floor study runs the under case at every step of `floor_steps` with
    `floor_seeds` sampler seeds and averages f − f* over the last `window_epochs` epochs (the
    epochs before are the burn-in; ls-under and ls-over use the largest step, seed 0)."""

    epochs: int
    window_epochs: int  # the floor is the mean of f − f* over these last epochs
    floor_seeds: int
    n: int = 200
    dims: tuple[int, int] = (100, 1000)  # under-, over-parameterized
    floor_steps: tuple[float, ...] = (0.5, 0.25, 0.125)
    noise: float = 100.0
    data_seed: int = 0


@dataclass(frozen=True)
class NetSettings:
    """Parts 4 and 6: the residual widths of the small and big nets, data, init, epochs,
    the epochs of the lecture's step-size table and the rules' period K (in epochs)."""

    n_train: int
    epochs: int
    small: tuple[int, ...] = (5, 5, 5, 2)  # residual widths; then the 1 output
    big: tuple[int, ...] = (25,) * 15 + (2,)
    data: str = "spirals"
    init: str = "he"
    table_epochs: tuple[int, ...] = (0, 10, 50, 100, 200, 300, 500, 700, 1000)
    period: int = 50  # K of the step-size rules, in epochs
    seed: int = 0


@dataclass(frozen=True)
class AgreementSettings:
    """Part 7: the MLP on digits (widths, lr, batch size, epochs) and the mini-batch sizes
    at which μ_K is measured, from `pairs_of` sampled batches each."""

    n_train: int
    epochs: int
    widths: tuple[int, ...] = (64,)
    lr: float = 0.05
    batch_size: int = 16
    batch_sizes: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64)
    pairs_of: int = 64  # sampled mini-batches per batch size (their pairwise μ)


@dataclass(frozen=True)
class Settings:
    """One scale of `qualitative-sgd`: the settings of each part."""

    toys: ToySettings
    least_squares: LeastSquaresSettings
    nets: NetSettings
    agreement: AgreementSettings


SCALE_SETTINGS = {
    "smoke": Settings(
        ToySettings(noise_runs=2000, noise_steps=120, pair_steps=600, escape_runs=512, escape_steps=400),
        LeastSquaresSettings(epochs=20, window_epochs=10, floor_seeds=2, n=50, dims=(25, 250)),
        NetSettings(n_train=16, epochs=8, table_epochs=(0, 4, 8), period=5),
        AgreementSettings(n_train=128, epochs=8, batch_sizes=(1, 4, 16)),
    ),
    "cpu": Settings(
        ToySettings(noise_runs=20000, noise_steps=200, pair_steps=2000, escape_runs=4096, escape_steps=1000),
        LeastSquaresSettings(epochs=250, window_epochs=100, floor_seeds=4),
        NetSettings(n_train=200, epochs=400, table_epochs=(0, 10, 50, 100, 200, 300, 400)),
        AgreementSettings(n_train=512, epochs=60),
    ),
    "full": Settings(
        ToySettings(
            noise_runs=100000, noise_steps=400, pair_steps=4000, escape_runs=32768, escape_steps=2000
        ),
        LeastSquaresSettings(
            epochs=800, window_epochs=300, floor_seeds=8, floor_steps=(0.5, 0.25, 0.125, 0.0625)
        ),
        NetSettings(n_train=200, epochs=1000),
        AgreementSettings(n_train=1797, epochs=200, widths=(256,)),
    ),
}
