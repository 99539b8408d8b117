"""`sgdlab tune-init`: the initialization-scale procedure of Nonnenmacher, Reeb & Steinwart
(2021, "Which minimizer does my neural network converge to?", Sect. 3), for any config whose
model has an initialization scale `model.sigma`:

  (a) train with the config's (standard) σ;
  (b) retrain from the same θ_0 with σ smaller by `factor` (default 0.7: "several ten percent");
  (c) compare validation losses: if it did not decrease, or decreased by less than `margin`
      (relative), stop; otherwise continue with (b);
  (d) stop as well when training gets impractically slow: a trial that does not reach the loss
      threshold within `max_slowdown` × the steps the standard σ needed;
  (e) return the trial with the smallest validation loss.

The rule of (b)–(e) is `Procedure`, apart from training: `tune_init` applies it while it trains,
and `Procedure.replay` applies it to trials trained beforehand (the σ grid of the
`which-minimizer` reproduction, where it is a claim).

Why it works: the trained net is the σ-invariant kernel interpolant plus an initialization
term ∝ σ^(L+1) that only adds noise on test points (Thm 3.1–3.2); a smaller σ shrinks that term
until vanishing gradients make training slow.

"The same θ_0": every trial keeps the config's seed, so the model draws the same standard
normal numbers from its init stream. In NTK parametrization they are the parameters themselves
and σ multiplies them in the forward pass ((σ/√n)W x); with `init = "ntk-normal"` the weights
are those draws times σ/√fan_in. Either way a smaller σ is the same draws scaled down.

Validation: a seeded random `validation` fraction of the training set is held out (the "sgdlab
validation" stream of the run seed); every trial trains on the rest and is evaluated on the
held-out points (its choice) and on the config's test split (reported, never used to choose).
Trials run in memory; the output directory receives tune.json (every trial and the choice),
tune-init.png, best.pt (the chosen net's state_dict) and best.toml (the config with its σ).
"""

from .procedure import Procedure, Trial, TuneResult
from .training import check_sigma, figure, sigma_models, tune_init, validation_split, write

__all__ = [
    "Procedure",
    "Trial",
    "TuneResult",
    "check_sigma",
    "figure",
    "sigma_models",
    "tune_init",
    "validation_split",
    "write",
]
