"""Toy landscapes and particle simulations: 2-D functions with exact derivatives, many SGD /
SGDL runs advanced at once, basin occupancy, and the Boltzmann prediction by quadrature; and
the small examples of Giselsson's lecture on SGD's qualitative convergence behavior (`lecture`):
the noise ball, the 1-D pair and escaping a minimum that is not individually flat, simulated
exactly on one torch thread by default."""

from .boltzmann import BoltzmannMasses, boltzmann_masses
from .landscapes import (
    BASINS,
    FLAT_SHARP,
    FLAT_SHARP_PRINTED,
    LANDSCAPES,
    ROSENBROCK,
    Landscape,
    condition_number,
    hessian_at,
)
from .lecture import (
    Escape,
    NoiseBall,
    escape_summary,
    pair_amplitude,
    simulate_escape,
    simulate_noise_ball,
    simulate_pair,
)
from .particles import (
    Dynamics,
    Simulation,
    log_ratio_se,
    occupancy,
    simulate,
    simulate_loop,
    uniform_starts,
    wilson,
)

__all__ = [
    "BASINS",
    "BoltzmannMasses",
    "Dynamics",
    "Escape",
    "FLAT_SHARP",
    "FLAT_SHARP_PRINTED",
    "LANDSCAPES",
    "Landscape",
    "NoiseBall",
    "ROSENBROCK",
    "Simulation",
    "boltzmann_masses",
    "condition_number",
    "escape_summary",
    "hessian_at",
    "log_ratio_se",
    "occupancy",
    "pair_amplitude",
    "simulate",
    "simulate_escape",
    "simulate_loop",
    "simulate_noise_ball",
    "simulate_pair",
    "uniform_starts",
    "wilson",
]
