"""Toy landscapes and particle simulations: 2-D functions with exact derivatives, many SGD /
SGDL runs advanced at once, basin occupancy, and the Boltzmann prediction by quadrature."""

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
    "FLAT_SHARP",
    "FLAT_SHARP_PRINTED",
    "LANDSCAPES",
    "Landscape",
    "ROSENBROCK",
    "Simulation",
    "boltzmann_masses",
    "condition_number",
    "hessian_at",
    "log_ratio_se",
    "occupancy",
    "simulate",
    "simulate_loop",
    "uniform_starts",
    "wilson",
]
