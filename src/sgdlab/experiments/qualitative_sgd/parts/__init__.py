"""The parts of `qualitative-sgd`, the orchestration of the five roles through the Lab: each part
trains or simulates (`configs`, `sgdlab.toys`), measures (`measure`), saves its tables, draws its
figure (`figures`) and decides its claims (`claims`). The simulated parts (`toys`: noise ball,
1-D pair, escaping), least squares (`least_squares`), the residual nets and step-size rules
(`nets`) and μ on digits (`agreement`)."""

from .agreement import agreement_part
from .least_squares import least_squares_part
from .nets import nets_part, rules_part
from .toys import BATCH_SIZES, PAIR_C, PAIR_STEP, PAIR_X0, escaping_part, noise_ball_part, pair_part

__all__ = [
    "BATCH_SIZES",
    "PAIR_C",
    "PAIR_STEP",
    "PAIR_X0",
    "agreement_part",
    "escaping_part",
    "least_squares_part",
    "nets_part",
    "noise_ball_part",
    "pair_part",
    "rules_part",
]
