"""What `sgdl-flatness` measures: the particle and Rosenbrock simulations (`toy`), the noise
sweep's runs (`mlp`) and the flatness of the label runs' minimizers (`labels`)."""

from .labels import (
    flatness_table,
    interpolation_surface,
    measure_run,
    minimizer,
    simplex_corners,
    surface_summary,
)
from .mlp import SweepRun, split_sizes, sweep_curves, sweep_run
from .toy import (
    FLAT,
    PLATEAU,
    SHARP,
    LinearRegime,
    Setting,
    TallestBar,
    crossing,
    histogram,
    linear_regime,
    particle_settings,
    rosenbrock_marks,
    run_setting,
    simulate_all,
    simulate_rosenbrock,
    tallest_bar,
)

__all__ = [
    "FLAT",
    "PLATEAU",
    "SHARP",
    "LinearRegime",
    "Setting",
    "SweepRun",
    "TallestBar",
    "crossing",
    "flatness_table",
    "histogram",
    "interpolation_surface",
    "linear_regime",
    "measure_run",
    "minimizer",
    "particle_settings",
    "rosenbrock_marks",
    "run_setting",
    "simplex_corners",
    "simulate_all",
    "simulate_rosenbrock",
    "split_sizes",
    "surface_summary",
    "sweep_curves",
    "sweep_run",
    "tallest_bar",
]
