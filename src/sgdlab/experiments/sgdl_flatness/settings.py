"""What `sgdl-flatness` runs at each scale.

smoke  seconds (used by tests): 2,000 particles, the MLP on 64 digits (γ' ∈ {0, 0.1}, two seeds),
       random labels on 32
cpu    minutes on 2 cores: ≥ 10^5 particles per noise level; the report's MLP (512-512, batch 32,
       lr 0.01) on 1,024 digits for the noise sweep and on 256 digits for natural vs random labels
full   the report's data: MNIST and CIFAR-10 (flattened) for the sweep, CIFAR-10 for the labels

Assumed where the paper and the report are silent (each is a setting here):
- toy step size η = 0.5 for the basin-mass runs (stable: ηκ = 0.79 < 2 at both minima) and a
  budget of 2,000 steps (10^3 time units: every particle within ~3.2 of a minimum reaches it);
  starts U(0, 10)² as REPRODUCTION.md states (the report's code drew U(1, 10]²); projection onto
  the disc of radius 7.5 around (5, 5), which holds the whole start square (the paper's SGD has
  a projection Π_K, and a bounded domain makes exp(−f/T) normalizable).
- the Boltzmann check needs runs that can mix: the barrier between a well and the plateau is
  ΔU = 1, so the escape time grows like e^{ΔU/T}, with T = γ'²/(2η) ≤ 0.01 at the paper's
  levels (≥ e^{100} steps). Two hotter levels, T = 0.25 and 0.5 at η = 0.1, are added for it;
  η = 0.1 keeps the Euler–Maruyama bias of the flat/sharp ratio near ηκ/4 ≈ 4 % (allowed as
  ηκ/2 in the claim).
- Rosenbrock: starts U(−1.5, 1.5) × U(−0.5, 2.5), η = 5·10⁻⁴ (< 2/λ_max of the Hessian over
  the start box), 1.2·10⁵ steps: long enough for the median distance to cross the whole
  linear regime, from 10⁻³ (where H still is H(1, 1) to ~0.1 %) down to 10³× the float64 floor
  ε·κ ≈ 6·10⁻¹³, in which the rate is fitted (it gets there after ~10⁵ steps).
- the MLP "converges" when its median training loss over the last quarter of the epochs is
  ≤ 10 % of its initial loss (the median: noisy runs jump from epoch to epoch).
- the sweep trains 100 epochs, as the report did (on 1,024 digits plain SGD's test error has
  levelled off by then), under both noise schedules; plain SGD runs on 5 seeds, and a noisy
  run's results are "similar" when its final training and test errors lie within 3 standard
  deviations of those seeds (at least one example) of their mean. All sweep runs share the
  data subset (data seed 0), so the seeds vary initialization, batch order and noise only.
- smoke trains the label runs at lr 0.1 (cpu and full at the report's 0.01).
- natural vs random labels: the same training images (data.seed = 0), run seeds 0, 1, 2; each
  trained until the full training loss is < 0.02 (train.stop_loss), checked every epoch, so
  both label kinds are compared at the same loss level; flatness on the whole training set.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MLP = {"name": "mlp", "widths": [512, 512]}
LR, BATCH = 0.01, 32
PAPER_NOISES = (0.0, 1e-4, 1e-3, 1e-2, 1e-1)  # the real-data sweep
TOY_NOISES = (0.0, 1e-3, 1e-2, 1e-1)


@dataclass(frozen=True)
class ToySettings:
    """The 2-D studies: particles, steps and η of the basin-mass runs, the SGDL noise
    levels, the hot (Boltzmann-check) temperatures with their η and steps, the projection
    disc, the start box, the recording and quadrature resolution; and the Rosenbrock runs
    (particles, steps, η, evenly spaced records, start box, tolerance, the top of the linear
    regime and the bottom's margin over the float64 floor)."""

    particles: int
    steps: int
    lr: float = 0.5
    noises: tuple[float, ...] = TOY_NOISES
    hot_temperatures: tuple[float, ...] = (0.25, 0.5)
    hot_lr: float = 0.1
    hot_steps: int = 5000
    hot_particles: int | None = None  # None: `particles`
    radius: float = 7.5
    center: tuple[float, float] = (5.0, 5.0)
    box: tuple[float, float, float, float] = (0.0, 10.0, 0.0, 10.0)
    records: int = 20  # occupancy snapshots per run
    quadrature: float = 0.01  # coarse node spacing of the Boltzmann quadrature
    seed: int = 0
    bins: int = 40  # histogram bins per axis over the start box (the report's picture)
    rosen_particles: int = 2000
    rosen_steps: int = 120_000
    rosen_lr: float = 5e-4
    rosen_records: int = 60  # evenly spaced records (besides 40 log-spaced ones)
    rosen_box: tuple[float, float, float, float] = (-1.5, 1.5, -0.5, 2.5)
    rosen_tol: float = 0.01
    rosen_linear_radius: float = 1e-3
    rosen_floor_margin: float = 1e3


@dataclass(frozen=True)
class SweepSettings:
    """SGDL on the report's MLP for each γ' > 0 of `noises`, with constant noise (the paper) and
    γ'/(1 + t) (the report's code), on seed 0; plain SGD (γ' = 0) on `baseline_seeds`, whose
    spread of final training and test error is what "similar" is measured against."""

    datasets: tuple[tuple[str, dict[str, Any]], ...]
    epochs: int
    noises: tuple[float, ...] = PAPER_NOISES
    converge_fraction: float = 0.1
    baseline_seeds: tuple[int, ...] = (0, 1, 2, 3, 4)


@dataclass(frozen=True)
class LabelSettings:
    """Natural vs random labels: the data, the epoch cap and loss threshold of each run,
    the seeds, and the flatness measurements (Hessian options, perturbation radii and
    directions, the simplex grid and the level of its flat fraction)."""

    data: dict[str, Any]
    max_epochs: int
    seeds: tuple[int, ...] = (0, 1, 2)
    stop_loss: float = 0.02
    lr: float = LR
    hessian: dict[str, Any] = field(default_factory=lambda: {"k": 3, "trace_probes": 32})
    radii: tuple[float, ...] = (0.05, 0.1)  # relative sizes of the filter-normalized perturbations
    directions: int = 32
    simplex_steps: int = 12
    simplex_margin: float = 0.25
    flat_level: float = 0.1  # area of the simplex where the interpolated loss stays ≤ this


@dataclass(frozen=True)
class Settings:
    """One scale of `sgdl-flatness`: the 2-D studies, the noise sweep and the label comparison."""

    toy: ToySettings
    sweep: SweepSettings
    labels: LabelSettings


SCALE_SETTINGS = {
    "smoke": Settings(
        ToySettings(
            particles=2000,
            steps=150,
            hot_steps=300,
            rosen_particles=100,
            rosen_steps=3000,
            records=6,
            quadrature=0.1,
        ),
        SweepSettings(
            (("digits", {"name": "digits", "n_train": 64, "n_test": 32}),),
            epochs=3,
            noises=(0.0, 0.1),
            baseline_seeds=(0, 1),
        ),
        # lr 0.1 so 32 random labels are memorized within seconds (plumbing, not the finding)
        LabelSettings(
            {"name": "digits", "n_train": 32, "n_test": 0},
            max_epochs=300,
            lr=0.1,
            stop_loss=0.05,
            hessian={"k": 2, "trace_probes": 8},
            directions=8,
            simplex_steps=5,
        ),
    ),
    "cpu": Settings(
        ToySettings(particles=100_000, steps=2000),
        SweepSettings((("digits", {"name": "digits", "n_train": 1024, "n_test": 512}),), epochs=100),
        LabelSettings({"name": "digits", "n_train": 256, "n_test": 0}, max_epochs=2000),
    ),
    "full": Settings(
        ToySettings(particles=1_000_000, steps=4000, hot_steps=20_000, rosen_particles=20_000),
        SweepSettings((("mnist", {"name": "mnist"}), ("cifar10", {"name": "cifar10"})), epochs=100),
        LabelSettings(
            {"name": "cifar10", "n_train": 10_000, "n_test": 0},
            max_epochs=2000,
            hessian={"k": 3, "trace_probes": 64, "subset": 2048},
        ),
    ),
}
