"""What `gamma-principle` measures, as plain numbers and tables: per ablation, speed to the common
loss level, γ before it, Theorem 1 per run and the seed-to-seed baseline (`speed`); the PCA view
of the momentum and Adam paths (`pca`)."""

from .pca import PcaView, pca_view, step_angles
from .speed import (
    AblationMeasures,
    SeedSpread,
    columns,
    epochs_to_level,
    gamma_before,
    measure_ablation,
    run_rows,
    seed_spread,
)

__all__ = [
    "AblationMeasures",
    "PcaView",
    "SeedSpread",
    "columns",
    "epochs_to_level",
    "gamma_before",
    "measure_ablation",
    "pca_view",
    "run_rows",
    "seed_spread",
    "step_angles",
]
