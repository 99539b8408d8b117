"""Pinned smoke claims: every reproduction's claims at scale `smoke` (id, verdict, evidence) as
fixtures in tests/fixtures/claims/<experiment>.json, so that a change that should change no
result (a refactoring, a speed-up) is seen to change none.

A claim that changes on purpose (a fidelity fix, new evidence) gets its pin rewritten, in its
own commit, by

    PYTHONPATH=src python -m tests.claims_pin [EXPERIMENT ...]    (default: every experiment)

which runs the smoke reproductions and writes their pins; `git diff tests/fixtures/claims`
then shows exactly what changed.

Numbers are compared to a relative 1e-9 (float rounding of an equivalent formula, not a
different result); everything else exactly.
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
from pathlib import Path
from typing import Any

PINS = Path(__file__).resolve().parent / "fixtures" / "claims"
REGENERATE = "PYTHONPATH=src python -m tests.claims_pin {name}"
RTOL = 1e-9


def pin_path(name: str) -> Path:
    """Where experiment `name`'s pinned smoke claims are."""
    return PINS / f"{name}.json"


def pinned_form(claims: list[Any]) -> list[dict[str, Any]]:
    """The pinned part of each claim: id, verdict and evidence, as plain JSON values."""
    return json.loads(
        json.dumps([{"id": c.id, "verdict": c.verdict, "evidence": c.evidence} for c in claims])
    )


def differences(pinned: Any, now: Any, where: str = "") -> list[str]:
    """Every place where `now` differs from `pinned` ("path: pinned → now"), numbers within RTOL."""
    if isinstance(pinned, dict) and isinstance(now, dict):
        out = [f"{where}.{k}: missing now" for k in pinned if k not in now]
        out += [f"{where}.{k}: new" for k in now if k not in pinned]
        for k in pinned.keys() & now.keys():
            out += differences(pinned[k], now[k], f"{where}.{k}")
        return out
    if isinstance(pinned, list) and isinstance(now, list):
        if len(pinned) != len(now):
            return [f"{where}: {len(pinned)} entries pinned, {len(now)} now"]
        return [
            d
            for i, (a, b) in enumerate(zip(pinned, now, strict=True))
            for d in differences(a, b, f"{where}[{i}]")
        ]
    if isinstance(pinned, bool) or isinstance(now, bool):
        return [] if type(pinned) is type(now) and pinned == now else [f"{where}: {pinned!r} → {now!r}"]
    if isinstance(pinned, (int, float)) and isinstance(now, (int, float)):
        return (
            []
            if math.isclose(pinned, now, rel_tol=RTOL, abs_tol=1e-300)
            else [f"{where}: {pinned!r} → {now!r}"]
        )
    return [] if pinned == now else [f"{where}: {pinned!r} → {now!r}"]


def claim_differences(pinned: list[dict[str, Any]], now: list[dict[str, Any]]) -> list[str]:
    """What differs between two pinned forms, claim by claim (matched by id)."""
    ids_pinned, ids_now = [c["id"] for c in pinned], [c["id"] for c in now]
    if ids_pinned != ids_now:
        return [f"claim ids: {ids_pinned} → {ids_now}"]
    return [d for a, b in zip(pinned, now, strict=True) for d in differences(a, b, a["id"])]


def write_pin(name: str, claims: list[Any]) -> Path:
    """Write experiment `name`'s pinned smoke claims."""
    path = pin_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(pinned_form(claims), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def main(names: list[str]) -> None:
    from sgdlab.experiments import experiments, reproduce

    for name in names or experiments.names():
        with tempfile.TemporaryDirectory() as tmp:
            claims = reproduce(name, Path(tmp) / name, "smoke", "cpu")
        print(f"wrote {write_pin(name, claims)} ({len(claims)} claims)")


if __name__ == "__main__":
    main(sys.argv[1:])
