"""What `edge-of-stability` runs at each scale (Cohen, Kaur, Li, Kolter & Talwalkar 2021,
"Gradient descent on neural networks typically occurs at the edge of stability").

Common to every run: full-batch gradient descent (`gd`, no momentum, no weight decay) on a
fixed CIFAR-10 subset (standardized per channel), one seed, float32, one thread; the
sharpness λ_max — the top eigenvalue of the Hessian of the training loss on the *whole*
training subset (the quantity whose 2/η threshold the paper's argument is about) — by the
`hessian` probe's warm-started Lanczos every `every` steps; the full-batch training loss at
every step (the `batch_loss` probe: under GD the batch is the training set). Step sizes are
written as the paper writes them, η = 2/x: a study lists the thresholds x = 2/η.

  mse  squared loss ½‖f(x) − y‖² against one-hot targets, averaged over the examples (the
       paper's "MSE")
  ce   softmax cross-entropy

  smoke  seconds (used by the test suite): a width-32 tanh net on 64 images at 8×8
  cpu    ≤ 15 min on 2 cores: 1,000 images at 32×32; the paper's fully connected nets (2
         hidden layers of width 200, tanh and ReLU) and a small CNN (the zoo's LeNet-like
         CNN at width 8: two 4×4 convolutions with max-pooling, 8,186 parameters)
  full   the paper's setting: 5,000 images, more step sizes, longer runs (meant for a GPU)

Every trajectory is read up to the step where the training accuracy first reaches 99 %, the
paper's stopping rule (`--acc_goal 0.99` in its code), or to the step cap.

The thresholds sit above each net's λ_max at θ_0 (measured on the cpu subset: fc-tanh/MSE
≈ 71, fc-relu/MSE ≈ 17, CNN/MSE ≈ 23, fc-tanh/CE ≈ 8) so every run starts stable and reaches
2/η by progressive sharpening, as in the paper, not by an unstable first step. Explored and
not kept: cross-entropy at 2/η = 10, 20, 30 (1.3, 2.5, 3.7 × λ_max(θ_0)), where λ_max jumped
to 1.3–2.2 × 2/η within 100 steps and fell below the band once the 1,000 images were fit.

Assumed where the paper is silent or its setting is too large for a CPU: 1,000 training
images at cpu scale (the paper: 5,000), the CNN's width, the step counts (enough for the onset
of every η plus a stretch after it), the cut (`Drop`) and the small step of the gradient-flow
run (`Flow`; the paper integrates the flow with Runge–Kutta at step 1/λ_max; GD at a step
whose own threshold 2/η_f stays far above λ_max follows the same path).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

LOSSES = {"mse": ("squared", "onehot"), "ce": ("cross-entropy", "index")}  # loss → (train.loss, data.targets)


@dataclass(frozen=True)
class Net:
    """One network of the paper's families: `key` names it in runs and claims, `model` is the
    zoo config, `resize` the input side (None: CIFAR-10's 32)."""

    key: str
    title: str
    model: dict[str, Any]
    resize: int | None = None


@dataclass(frozen=True)
class Study:
    """GD on one network and loss at several step sizes η = 2/x, x in `thresholds`, each run
    `steps[i]` steps with λ_max measured every `every` steps."""

    net: Net
    loss: str  # "mse" | "ce"
    thresholds: tuple[float, ...]
    steps: tuple[int, ...]
    every: int

    def __post_init__(self) -> None:
        """One step count per threshold, and a loss of LOSSES."""
        if len(self.thresholds) != len(self.steps):
            raise ValueError(
                f"{self.key}: {len(self.thresholds)} thresholds but {len(self.steps)} step counts"
            )
        if self.loss not in LOSSES:
            raise ValueError(f"{self.key}: loss {self.loss!r} is not one of {', '.join(LOSSES)}")

    @property
    def key(self) -> str:
        """`<net>-<loss>`, e.g. fc-tanh-mse: the study's name in runs, claims and figures."""
        return f"{self.net.key}-{self.loss}"

    def steps_for(self, threshold: float) -> int:
        """The step count of the run at 2/η = `threshold`."""
        return self.steps[self.thresholds.index(threshold)]


@dataclass(frozen=True)
class Drop:
    """The step-size cut: the run of study `study` at 2/η = `threshold` is continued from θ at
    step `at` with η' = 2/`new_threshold` for `steps` steps, λ_max every `every` steps."""

    study: str
    threshold: float
    at: int
    new_threshold: float
    steps: int
    every: int


@dataclass(frozen=True)
class Flow:
    """Gradient flow from the GD runs' θ_0, approximated by GD at the small step
    η_f = 2/`flow_threshold` for `steps` steps (time t = η_f·steps), λ_max every `every` steps;
    compared with the run of study `study` at 2/η = `threshold`."""

    study: str
    threshold: float
    flow_threshold: float
    steps: int
    every: int


@dataclass(frozen=True)
class Settings:
    """One scale of `edge-of-stability`: the data subset, the studies, the cut and the flow
    run, and the Lanczos tolerance of the sharpness."""

    n_train: int
    studies: tuple[Study, ...]
    drop: Drop
    flow: Flow
    n_test: int = 100  # the runs never evaluate it; kept small
    seed: int = 0
    # Lanczos stops when every Ritz residual is ≤ tol·|λ_1|, so λ_max is within 1 % (Bauer–Fike):
    # ten times finer than the band the claims read (claims.BAND_LOW … BAND_HIGH).
    lanczos_tol: float = 1e-2
    # The paper's horizon: its code stops GD once the training accuracy reaches 99 %
    # (`--acc_goal 0.99`); every trajectory here is read up to that step (None: to the end).
    acc_goal: float | None = 0.99
    threads: int = 1

    def __post_init__(self) -> None:
        """The cut and the flow name a study and one of its thresholds; the cut lies inside
        its parent run."""
        for part, ref in (("drop", self.drop), ("flow", self.flow)):
            study = self.study(ref.study)
            if ref.threshold not in study.thresholds:
                raise ValueError(f"{part}: {study.key} has no run at 2/η = {ref.threshold:g}")
        if not 0 < self.drop.at < self.study(self.drop.study).steps_for(self.drop.threshold):
            raise ValueError(f"drop: step {self.drop.at} is not inside its parent run")

    def study(self, key: str) -> Study:
        """The study named `key` (e.g. fc-tanh-mse)."""
        for s in self.studies:
            if s.key == key:
                return s
        raise KeyError(f"no study {key!r} (have: {', '.join(s.key for s in self.studies)})")


FC_TANH = Net(
    "fc-tanh", "fully connected, tanh, 2 × 200", {"name": "mlp", "widths": [200, 200], "activation": "tanh"}
)
FC_RELU = Net(
    "fc-relu", "fully connected, ReLU, 2 × 200", {"name": "mlp", "widths": [200, 200], "activation": "relu"}
)

CNN_SMALL = Net("cnn", "LeNet-like CNN, width 8", {"name": "lenet", "width": 8})
CNN = Net("cnn", "LeNet-like CNN, width 32", {"name": "lenet", "width": 32})

SCALE_SETTINGS: dict[str, Settings] = {
    "smoke": Settings(
        n_train=64,
        studies=(
            Study(
                Net(
                    "fc-tanh",
                    "fully connected, tanh, 2 × 32",
                    {"name": "mlp", "widths": [32, 32], "activation": "tanh"},
                    resize=8,
                ),
                "mse",
                thresholds=(12.0, 16.0),
                steps=(150, 200),
                every=10,
            ),
        ),
        drop=Drop("fc-tanh-mse", 12.0, at=100, new_threshold=16.0, steps=100, every=10),
        flow=Flow("fc-tanh-mse", 12.0, flow_threshold=40.0, steps=300, every=20),
        acc_goal=None,  # 64 images are fit within tens of steps: read the whole runs
    ),
    "cpu": Settings(
        n_train=1000,
        studies=(
            Study(FC_TANH, "mse", thresholds=(90.0, 110.0, 140.0), steps=(600, 800, 1200), every=20),
            Study(FC_RELU, "mse", thresholds=(25.0, 35.0), steps=(400, 500), every=20),
            Study(FC_TANH, "ce", thresholds=(40.0, 60.0), steps=(500, 600), every=20),
            Study(CNN_SMALL, "mse", thresholds=(30.0, 40.0), steps=(500, 600), every=20),
        ),
        drop=Drop("fc-tanh-mse", 90.0, at=400, new_threshold=120.0, steps=400, every=20),
        flow=Flow("fc-tanh-mse", 90.0, flow_threshold=300.0, steps=1500, every=50),
    ),
    "full": Settings(
        n_train=5000,
        studies=(
            Study(
                FC_TANH,
                "mse",
                thresholds=(90.0, 110.0, 140.0, 200.0),
                steps=(4000, 5000, 6000, 8000),
                every=20,
            ),
            Study(FC_RELU, "mse", thresholds=(25.0, 35.0, 50.0), steps=(3000, 4000, 5000), every=20),
            Study(FC_TANH, "ce", thresholds=(30.0, 50.0), steps=(4000, 5000), every=20),
            Study(CNN, "mse", thresholds=(40.0, 60.0), steps=(4000, 5000), every=20),
        ),
        drop=Drop("fc-tanh-mse", 90.0, at=2000, new_threshold=120.0, steps=2000, every=20),
        flow=Flow("fc-tanh-mse", 90.0, flow_threshold=300.0, steps=8000, every=50),
        lanczos_tol=1e-3,
    ),
}
