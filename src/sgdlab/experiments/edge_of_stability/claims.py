"""The claims of `edge-of-stability` (Cohen, Kaur, Li, Kolter & Talwalkar 2021), one function
per claim kind, each deciding from plain measured numbers: the recorded steps, the sharpness
λ_max (top eigenvalue of the training-loss Hessian) at some of them, the full-batch training
loss at every step, and the step size η.

Per GD run at step size η (the paper's Fig. 1 and Sect. 3):
  sharpening   progressive sharpening: while λ_max is below the band around 2/η (the steps
               before the onset), λ_max rises — its least-squares slope against the step is
               positive by more than SIGNIFICANCE standard errors of the fit
  edge         λ_max reaches the band [BAND_LOW, BAND_HIGH] × 2/η (the onset: the first
               measurement with λ_max·η/2 ≥ BAND_LOW) and stays in it for more than MOST of
               the measurements after the onset; the run does not diverge
  loss         after the onset the training loss is not monotone (it rises by more than
               RISE_TOL, relative, at some step) yet is lower at the end than at the onset
Across runs:
  drop         after lowering η to η' at a step where the run is at the edge, λ_max rises to
               the band around the new threshold 2/η' (Sect. 3, the step-size cut)
  flow         gradient flow from the same θ_0 (GD at a step η_f small enough that its own
               λ_max·η_f/2 stays below BAND_LOW, where GD tracks the flow) keeps sharpening
               past the band around 2/η of a GD run, at equal time t = η·k (Sect. 3 / App.)

The band is a stated constant, not fitted: the paper says the sharpness "hovers right at, or
just above" 2/η (abstract and Fig. 1 caption) without a number. We read "at" as no more than
10 % below — the dips of the self-stabilization cycle (Damian, Nichani & Lee 2023) — and "just
above" as no more than 20 % above. "Most" is its plain meaning, more than half.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ...stats import slope_and_error
from ..base import Claim, decide, not_applicable

BAND_LOW = 0.9  # λ_max·η/2 at or above this: at the edge ("right at" 2/η, dips included)
BAND_HIGH = 1.2  # ... and at or below this ("just above" 2/η)
MOST = 0.5  # "most of the remaining steps": more than this fraction of them
SIGNIFICANCE = 2.0  # a slope counts when it exceeds this many standard errors (≈ 95 %)
# A step's loss "rises" when L_{k+1} > L_k·(1 + RISE_TOL): the float32 mean of n ≤ 10^4
# per-sample losses carries relative round-off ≲ 1e-6, so a rise ten times that is real.
RISE_TOL = 1e-5

CITE = "Cohen, Kaur, Li, Kolter & Talwalkar 2021"


def band_text() -> str:
    """The band in words, for statements: "[0.9, 1.2] × 2/η"."""
    return f"[{BAND_LOW:g}, {BAND_HIGH:g}] × 2/η"


@dataclass(frozen=True)
class Sharpness:
    """λ_max of one GD run at step size `eta`, measured at `steps` (ascending)."""

    eta: float
    steps: np.ndarray
    values: np.ndarray

    @property
    def ratio(self) -> np.ndarray:
        """λ_max·η/2: 1 at the stability threshold of a quadratic."""
        return np.asarray(self.values, dtype=np.float64) * self.eta / 2

    def onset(self) -> int | None:
        """The index of the first measurement with λ_max·η/2 ≥ BAND_LOW (None: never)."""
        hits = np.flatnonzero(self.ratio >= BAND_LOW)
        return int(hits[0]) if len(hits) else None

    def onset_step(self) -> int | None:
        """The step of the onset (None: λ_max never reached the band)."""
        i = self.onset()
        return None if i is None else int(self.steps[i])


def sharpening_claim(id: str, s: Sharpness) -> Claim:
    """Claim `<study>/2over<x>/sharpening`, progressive sharpening (Cohen et al. 2021,
    Sect. 3.1): over the measurements before
    the onset (λ_max·η/2 < BAND_LOW; the whole run if it never gets there), the least-squares
    slope b of λ_max against the step and its standard error se; holds when b > SIGNIFICANCE·se.
    Not applicable with fewer than 3 such measurements (λ_max starts at the band)."""
    statement = (
        f"progressive sharpening: while λ_max is below {BAND_LOW:g} × 2/η it rises "
        f"(slope > {SIGNIFICANCE:g} standard errors)"
    )
    i = s.onset()
    before = slice(0, len(s.steps) if i is None else i)
    steps = np.asarray(s.steps[before], dtype=np.float64)
    values = np.asarray(s.values[before], dtype=np.float64)
    if len(steps) < 3:
        return not_applicable(
            id,
            statement,
            f"only {len(steps)} measurement(s) before the onset: λ_max starts at the band",
            threshold=2 / s.eta,
            measurements_before_onset=len(steps),
        )
    b, se = slope_and_error(steps, values)
    holds = bool(b > SIGNIFICANCE * se)
    low = int(np.argmin(values))  # shown: an early dip below λ_max(θ_0) weakens a linear trend
    return decide(
        id,
        statement,
        holds,
        headline=f"dλ/dk = {b:.3g} ± {se:.2g} per step before the onset; "
        f"λ_max {values[0]:.4g} → {values[-1]:.4g} (2/η = {2 / s.eta:.4g})"
        + (
            f", lowest {values[low]:.4g} at step {int(steps[low])}" if low not in (0, len(values) - 1) else ""
        ),
        meaning="GD sharpens the landscape by itself until the stability threshold stops it"
        if holds
        else "λ_max did not rise steadily below the threshold: no significant linear trend over the "
        "measurements before the onset",
        slope_per_step=b,
        slope_se=se,
        significance=SIGNIFICANCE,
        window_steps=[int(steps[0]), int(steps[-1])],
        measurements=len(steps),
        sharpness_first=values[0],
        sharpness_last=values[-1],
        sharpness_lowest=values[low],
        sharpness_lowest_step=int(steps[low]),
        threshold=2 / s.eta,
        onset_step=s.onset_step(),
    )


def edge_claim(id: str, s: Sharpness, diverged_at: int | None = None, goal_step: int | None = None) -> Claim:
    """Claim `<study>/2over<x>/edge`, the edge of stability (Cohen et al. 2021, Sect. 3.2): λ_max
    reaches the band [BAND_LOW, BAND_HIGH]·2/η (the onset) and more than MOST of the
    measurements after the onset lie in it; a run that diverged fails. Not applicable when the
    onset is the last measurement (no later steps to judge). `goal_step`, where the measurements
    stop because the training accuracy reached the paper's goal, is shown in the evidence."""
    statement = (
        f"λ_max reaches {band_text()} and stays in that band for most (> {MOST:.0%}) of the "
        "remaining steps, without diverging"
    )
    ratio = s.ratio
    i = s.onset()
    common = {
        "eta": s.eta,
        "threshold": 2 / s.eta,
        "band": [BAND_LOW, BAND_HIGH],
        "diverged_at": diverged_at,
        "accuracy_goal_step": goal_step,
        "last_measured_step": int(s.steps[-1]) if len(s.steps) else None,
    }
    if i is None:
        return decide(
            id,
            statement,
            False,
            headline=f"λ_max never reached the band: max λ_max·η/2 = {np.nanmax(ratio):.3g}"
            + (f"; diverged at step {diverged_at}" if diverged_at is not None else ""),
            meaning="GD stayed in the stable regime for this whole run (the onset lies later)",
            onset_step=None,
            max_ratio=np.nanmax(ratio),
            **common,
        )
    after = ratio[i + 1 :]
    if len(after) == 0:
        return not_applicable(
            id,
            statement,
            "the onset is the last measurement: no later steps to judge",
            onset_step=s.onset_step(),
            **common,
        )
    inside = (after >= BAND_LOW) & (after <= BAND_HIGH)
    fraction = float(inside.mean())
    plateau = float(np.median(after))
    holds = fraction > MOST and diverged_at is None
    return decide(
        id,
        statement,
        holds,
        headline=f"onset at step {s.onset_step()}; after it λ_max·η/2 has median {plateau:.3f}, "
        f"{fraction:.0%} of {len(after)} measurements in the band"
        + (f"; diverged at step {diverged_at}" if diverged_at is not None else ""),
        meaning="GD trains at the edge of stability: the sharpness hovers at 2/η instead of "
        "rising past it, where a quadratic would diverge"
        if holds
        else "the sharpness did not settle at 2/η",
        onset_step=s.onset_step(),
        plateau_ratio_median=plateau,
        ratio_range_after=[float(after.min()), float(after.max())],
        fraction_in_band=fraction,
        measurements_after_onset=len(after),
        most=MOST,
        **common,
    )


def rises(losses: np.ndarray) -> np.ndarray:
    """Where the loss rises: L_{k+1} > L_k·(1 + RISE_TOL), as a boolean per step pair."""
    v = np.asarray(losses, dtype=np.float64)
    return v[1:] > v[:-1] * (1 + RISE_TOL)


def loss_claim(
    id: str, steps: np.ndarray, losses: np.ndarray, onset_step: int | None, goal_step: int | None = None
) -> Claim:
    """Claim `<study>/2over<x>/loss`, non-monotone yet decreasing (Cohen et al. 2021, Sect. 3.2):
    over the steps from the onset to the end (`goal_step`, where the training accuracy reached
    the paper's goal, if the losses stop there), the full-batch training loss rises at some step
    (`rises`) and the last loss is below the loss at the onset. Not applicable without an onset."""
    statement = (
        "after the onset the training loss is non-monotone (rises at some steps) yet lower "
        "at the end than at the onset"
    )
    if onset_step is None:
        return not_applicable(id, statement, "λ_max never reached the band around 2/η: there is no onset")
    steps = np.asarray(steps)
    v = np.asarray(losses, dtype=np.float64)
    keep = np.isfinite(v)
    steps, v = steps[keep], v[keep]
    later = steps >= onset_step
    if later.sum() < 2:
        return not_applicable(
            id,
            statement,
            f"fewer than 2 recorded losses from the onset (step {onset_step})",
            onset_step=onset_step,
        )
    up_after = rises(v[later])
    up_before = rises(v[~later]) if (~later).sum() >= 2 else np.zeros(0, dtype=bool)
    at_onset, at_end = float(v[later][0]), float(v[-1])
    rel = v[later][1:] / v[later][:-1] - 1
    holds = bool(up_after.any() and at_end < at_onset)
    return decide(
        id,
        statement,
        holds,
        headline=f"loss {at_onset:.4g} at the onset (step {onset_step}) → {at_end:.4g} at the end; "
        f"it rose at {int(up_after.sum())} of {len(up_after)} steps after the onset "
        f"({int(up_before.sum())} before)",
        meaning="the loss keeps falling over long times while it oscillates over short ones, "
        "outside what the descent lemma allows"
        if holds
        else "the loss was monotone after the onset, or did not fall overall",
        onset_step=onset_step,
        loss_at_onset=at_onset,
        loss_at_end=at_end,
        end_step=int(steps[-1]),
        accuracy_goal_step=goal_step,
        rising_steps_after_onset=int(up_after.sum()),
        steps_after_onset=len(up_after),
        largest_relative_rise=float(rel.max()) if len(rel) else math.nan,
        rising_steps_before_onset=int(up_before.sum()),
        steps_before_onset=len(up_before),
        rise_tol=RISE_TOL,
    )


def cut_claim(id: str, parent: Sharpness, drop_step: int, after: Sharpness) -> Claim:
    """Claim `<study>/cut-2over<x>-to-2over<x'>`, the step-size cut (Cohen et al. 2021, Sect. 3): a
    run at the edge for step size η is continued from θ at `drop_step` with η' < η (`after`: its
    measurements, at absolute steps from `drop_step` on); holds when its λ_max reaches BAND_LOW·2/η'. Not
    applicable when the run was not at the edge at the cut (its last measurement at or before
    `drop_step` outside the band)."""
    statement = (
        f"after η is lowered mid-run to η', λ_max rises from the band around 2/η to {BAND_LOW:g} × 2/η'"
    )
    ratio = parent.ratio
    at = np.flatnonzero(np.asarray(parent.steps) <= drop_step)
    common = {
        "eta": parent.eta,
        "eta_after": after.eta,
        "threshold": 2 / parent.eta,
        "threshold_after": 2 / after.eta,
        "drop_step": drop_step,
    }
    if not len(at) or not BAND_LOW <= ratio[at[-1]] <= BAND_HIGH:
        where = f"{ratio[at[-1]]:.3g}" if len(at) else "not measured"
        return not_applicable(
            id, statement, f"the run was not at the edge at the cut (λ_max·η/2 = {where})", **common
        )
    reached = after.onset()
    top = float(np.nanmax(after.values)) if len(after.values) else math.nan
    holds = reached is not None
    return decide(
        id,
        statement,
        holds,
        headline=(
            f"λ_max {parent.values[at[-1]]:.4g} at the cut → {after.values[reached]:.4g} "
            f"({after.ratio[reached]:.3f} × 2/η') at step {int(after.steps[reached])}, "
            f"{int(after.steps[reached]) - drop_step} steps after the cut"
            if reached is not None
            else f"λ_max rose only to {top:.4g} = {top * after.eta / 2:.3f} × 2/η' within "
            f"{int(after.steps[-1]) - drop_step} steps after the cut"
        ),
        meaning="the sharpness is held at 2/η by the step size itself: lower η and it sharpens again"
        if holds
        else "the sharpness did not follow the new threshold",
        sharpness_at_cut=parent.values[at[-1]],
        ratio_at_cut=ratio[at[-1]],
        steps_to_new_band=None if reached is None else int(after.steps[reached]) - drop_step,
        last_step_after=int(after.steps[-1]) if len(after.steps) else None,
        max_sharpness_after=top,
        max_ratio_after=top * after.eta / 2,
        **common,
    )


def flow_claim(id: str, gd: Sharpness, small: Sharpness) -> Claim:
    """Claim `<study>/flow-vs-2over<x>`, gradient flow keeps sharpening (Cohen et al. 2021,
    Sect. 3): `small` is GD from the same
    θ_0 at a step η_f ≪ η, compared with the GD run `gd` at equal time t = η·k over the
    shorter of the two horizons. Holds when the flow's λ_max exceeds BAND_HIGH·2/η (past the
    band where GD hovers). Not applicable when the small-step run reached its own band
    (λ_max·η_f/2 ≥ BAND_LOW): from there it no longer tracks the flow."""
    statement = f"gradient flow from the same θ_0 keeps sharpening past {BAND_HIGH:g} × 2/η of the GD run"
    horizon = min(gd.eta * float(gd.steps[-1]), small.eta * float(small.steps[-1]))
    t = small.eta * np.asarray(small.steps, dtype=np.float64)
    within = t <= horizon * (1 + 1e-12)
    flow_values = np.asarray(small.values, dtype=np.float64)[within]
    own = float(np.nanmax(small.ratio[within]))
    common = {
        "eta": gd.eta,
        "threshold": 2 / gd.eta,
        "eta_flow": small.eta,
        "threshold_flow": 2 / small.eta,
        "time_horizon": horizon,
        "flow_own_max_ratio": own,
    }
    if own >= BAND_LOW:
        return not_applicable(
            id,
            statement,
            f"the small-step run reached its own edge (λ_max·η_f/2 = {own:.3g} ≥ {BAND_LOW:g}): "
            "it no longer tracks gradient flow",
            **common,
        )
    top = float(np.nanmax(flow_values))
    past = np.flatnonzero(flow_values > BAND_HIGH * 2 / gd.eta)
    holds = len(past) > 0
    gd_onset = gd.onset_step()
    return decide(
        id,
        statement,
        holds,
        headline=f"flow λ_max reaches {top:.4g} = {top * gd.eta / 2:.2f} × 2/η by t = {horizon:.3g}"
        + (f" (past the band at t = {t[within][past[0]]:.3g})" if holds else "")
        + (f"; GD hovers there from t = {gd.eta * gd_onset:.3g}" if gd_onset is not None else ""),
        meaning="without the step size's instability the sharpening does not stop at 2/η: "
        "the edge is made by GD, not by the landscape"
        if holds
        else "gradient flow stopped sharpening below the band as well",
        flow_max_sharpness=top,
        flow_max_ratio_to_gd_threshold=top * gd.eta / 2,
        time_past_band=float(t[within][past[0]]) if holds else None,
        gd_onset_time=None if gd_onset is None else gd.eta * gd_onset,
        **common,
    )
