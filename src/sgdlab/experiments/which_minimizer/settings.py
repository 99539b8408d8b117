"""What `which-minimizer` runs at each scale (Nonnenmacher, Reeb & Steinwart 2021).

Common to every run: two classes (0 vs 1) with ±1 targets, inputs standardized and scaled into
the unit ball, a ReLU MLP in NTK parametrization (W ~ N(0, 1), layer outputs (σ/√n)Wx) with zero
biases, squared loss ½(f − y)² averaged over the batch, trained until the full training loss
first drops below `stop_loss` (the paper: 1e-5) or `max_steps`, float32, one thread. `inits`
initializations (seeds 0…inits−1; the paper: 10) per setting, the same seeds in every setting,
so "the same θ_0" across σ, optimizers and batch sizes is literally the same draws. Each init
draws its own N training points, `n_test` test points and `n_val` validation points (the
procedure of Sect. 3 chooses σ by their loss; no claim reads them otherwise).

  smoke  seconds (used by the test suite): tiny nets, 2 inits, loss threshold 1e-3
  cpu    ≤ 15 min on 2 cores: digits, N = 40 training / 100 test / 100 validation points,
         widths 2048 (one hidden layer) and 1024 × 1024 (two), Example 1 at width 4096, the
         later net of width 64 on 80 points
  full   the paper's datasets (MNIST, Fashion-MNIST, CIFAR-10 0-vs-1), N = 200, wide nets

Why these cpu settings (measured on the digits; the paper's argument needs the nets' own
finite-width error well below the effects it explains): at widths 128/512 the GD nets' RMS gap
to the closed form was 0.035–0.08, the size of the distances between minimizers; at width 2048
(one layer) it is 0.017 at σ = 2 and 1024 × 1024 reaches ≈ 0.02 there, while the init term at
σ = 8 (4) is ≈ 1.2 and AdaGrad's distance to GD several times the gap. Below σ ≈ 1 these nets
leave the lazy regime (the kernel moves by more than `lazy_tol` and the trained nets beat the
kernel interpolant: σ = 0.5, width 2048), so the closed-form claim covers the σ where the kernel
stays put and says which; at σ ≈ 0.35 (width 2048) or 0.71 (1024 × 1024) GD at the NTK step
no longer trains (loss 0.5 for 20,000 steps) — the paper's "too small a σ … slow training",
where its procedure stops; so the one-layer grid reaches σ = 0.5 and the procedure's next trial,
σ = 0.25, is trained capped at its budget (`mitigation_below`). The narrow net of Sect. 6 needs
the larger data set: width 64 on N = 80 moves its kernel 14–70% and reaches 1e-5 in ≈ 10,000
GD steps (width 8–32 on 160 points did not within 40,000).

Assumed where the text is silent (its formulas and N were lost): zero biases (Thm 3.2's
σ^(L+1) law is stated for them), N = 40 at cpu scale (REPRODUCTION.md assumes 50–200; with
N = 80 GD needs ≈ 3× the steps), the procedure starting from the largest σ of the grid (a user
whose σ is too large) with factor ½ between trials (the grid's; the paper: "several ten
percent"), margin 5% and budget 10× as `sgdlab tune-init`; experiments 2, 3 and Example 1 at
σ = 2. The GD step is 2N/(λ_min + λ_max) of Θ̂ at θ_0 for the mean loss (the paper's
2/(λ_min + λ_max) for ½Σ; the same trajectory), SGD at the same per-sample step (batch b:
2b/(λ_min + λ_max)).
"""

from __future__ import annotations

from dataclasses import dataclass

from ...tune_init import Procedure


@dataclass(frozen=True)
class Arch:
    """A ReLU MLP: its hidden widths (L = len(widths) hidden layers)."""

    widths: tuple[int, ...]

    @property
    def depth(self) -> int:
        """L, the number of hidden layers."""
        return len(self.widths)

    @property
    def key(self) -> str:
        """`L<depth>w<width>`: the architecture's name in run names and claim ids."""
        return f"L{self.depth}w{self.widths[0]}"

    @property
    def title(self) -> str:
        """The architecture in words, for figure titles."""
        return f"{self.depth} hidden layer{'s' if self.depth > 1 else ''} of width {self.widths[0]}"


@dataclass(frozen=True)
class Search:
    """The step of a method without a theoretical one: the largest step of a doubling grid
    whose full-batch training loss decreases monotonically (each step's loss ≤ the previous
    one's × (1 + tol)) over the first `steps` steps (or until the loss threshold) of a probe run
    on init 0, searched from `start[optimizer]` (up while monotone, else down). GD on the
    narrow net of experiment 4 starts at its NTK step and only goes down."""

    start: tuple[tuple[str, float], ...] = (("adagrad", 0.16), ("adam", 0.02))
    factor: float = 2.0
    steps: int = 500
    tol: float = 1e-6
    max_probes: int = 12

    def start_for(self, optimizer: str) -> float:
        """The first step tried for `optimizer` (adagrad or adam)."""
        return dict(self.start)[optimizer]


@dataclass(frozen=True)
class Later:
    """Experiment 4: a less over-parameterized net on more data, linearized at a later time T
    (the earliest saved iterate from which Θ̂ changes by ≤ kernel_tol to the end)."""

    arch: Arch
    n_train: int
    sigmas: tuple[float, float]  # the standard and a large σ
    kernel_tol: float = 0.1
    dtype: str = "float64"  # a narrow net's kernel is ill-conditioned in float32


@dataclass(frozen=True)
class Example1:
    """The paper's Example 1: GD and AdaGrad on one training point x_1 (the first of the run's
    data permutation) at σ = `Settings.sigma_ref`. AdaGrad's first update is η·sign(φ_1)·sign(r_0),
    which moves f(x_1) by η‖φ_1‖₁ in the linearized net; its step is `adagrad_step` × the one
    that lands on y_1 at once, η = adagrad_step · |y_1 − f_0(x_1)|/‖φ_1‖₁ (GD: the NTK step
    1/Θ̂(x_1, x_1), which lands at once)."""

    arch: Arch
    adagrad_step: float = 0.5


@dataclass(frozen=True)
class Settings:
    """One scale of `which-minimizer`: datasets, training/validation/test sizes, inits, the step
    cap and loss threshold, the architectures and σ grid of each experiment, the procedure of
    Sect. 3 and where it starts, the SGD batch sizes, Example 1, the later-linearization net and
    the step-size search. Claim tolerances are not settings: each comes from a measured baseline
    (`stats.FiniteWidth`, the seed noise of `stats.Stat`)."""

    datasets: tuple[str, ...]
    classes: tuple[int, int]  # the binary task: these two classes of each dataset, as ±1
    n_train: int
    n_test: int
    n_val: int  # validation points (the procedure of Sect. 3 chooses σ by their loss)
    inits: int
    max_steps: int
    sigma_archs: tuple[Arch, ...]  # experiment 1
    sigmas: dict[int, tuple[float, ...]]  # depth → the σ grid of experiment 1 (ascending)
    mitigation_start: dict[int, float]  # depth → the σ the procedure starts from (no entry: none)
    mitigation_below: dict[int, tuple[float, ...]]  # depth → σ below the grid it may still try
    adaptive_archs: tuple[Arch, ...]  # experiment 2 (also in experiment 1)
    batch_arch: Arch  # experiment 3
    batch_sizes: tuple[int, ...]  # minibatch sizes (< n_train) of experiment 3
    example1: Example1
    later: Later  # experiment 4
    sigma_ref: float = 1.0  # σ of experiments 2 and 3 and Example 1, where the finite-width gap is measured
    lazy_tol: float = 0.1  # Thm 3.1's regime: Θ̂ moves by ≤ this (relative, Frobenius) in training
    stop_loss: float = 1e-5
    gd_step: float = 1.0  # GD step = gd_step × 2N/(λ_min + λ_max)
    search: Search = Search()
    mitigation: Procedure = Procedure(factor=0.5)  # the grid's ratio; margin and slowdown as tune-init's


SCALE_SETTINGS: dict[str, Settings] = {
    "smoke": Settings(
        datasets=("digits",),
        classes=(0, 1),
        n_train=16,
        n_test=40,
        n_val=20,
        inits=2,
        max_steps=1500,
        stop_loss=1e-3,
        sigma_archs=(Arch((128,)),),
        sigmas={1: (1.0, 2.0, 8.0)},
        mitigation_start={1: 8.0},
        mitigation_below={1: (0.5,)},
        adaptive_archs=(Arch((128,)),),
        batch_arch=Arch((128,)),
        batch_sizes=(4,),
        example1=Example1(Arch((256,))),
        later=Later(Arch((8,)), n_train=24, sigmas=(1.0, 4.0)),
        search=Search(steps=100, max_probes=6),
    ),
    "cpu": Settings(
        datasets=("digits",),
        classes=(0, 1),
        n_train=40,
        n_test=100,
        n_val=100,
        inits=10,
        max_steps=30_000,
        sigma_archs=(Arch((2048,)), Arch((1024, 1024))),
        sigmas={1: (0.5, 1.0, 2.0, 4.0, 8.0), 2: (1.0, 2.0, 4.0)},
        mitigation_start={1: 8.0},
        mitigation_below={1: (0.25,)},
        sigma_ref=2.0,
        adaptive_archs=(Arch((2048,)), Arch((1024, 1024))),
        batch_arch=Arch((2048,)),
        batch_sizes=(20, 10),
        example1=Example1(Arch((4096,))),
        later=Later(Arch((64,)), n_train=80, sigmas=(1.0, 4.0)),
    ),
    "full": Settings(
        datasets=("mnist", "fashion-mnist", "cifar10"),
        classes=(0, 1),
        n_train=200,
        n_test=100,
        n_val=100,
        inits=10,
        max_steps=200_000,
        sigma_archs=(Arch((4096,)), Arch((2048, 2048))),
        sigmas={1: (0.5, 1.0, 2.0, 4.0, 8.0, 16.0), 2: (0.5, 1.0, 2.0, 4.0, 8.0)},
        mitigation_start={1: 16.0, 2: 8.0},
        mitigation_below={1: (0.25,), 2: (0.25,)},
        sigma_ref=2.0,
        adaptive_archs=(Arch((4096,)), Arch((2048, 2048))),
        batch_arch=Arch((4096,)),
        batch_sizes=(100, 50, 20, 10),
        example1=Example1(Arch((8192,))),
        later=Later(Arch((32,)), n_train=400, sigmas=(1.0, 4.0)),
        search=Search(steps=5000),
    ),
}
