"""Claims: named, falsifiable statements with the measured numbers behind their verdicts, and
DIR/claims.json, where a reproduction keeps them.

A verdict is one of VERDICTS: `holds`, `fails`, or `not-applicable` (the claim's premise does
not hold, with the reason in its evidence). `decide` makes a claim from a measured boolean;
`save_claims` / `load_claims` write and read claims.json, refusing a damaged file.

>>> c = decide("loss-falls", "the loss falls", 0.1 < 2.3, headline="2.3 → 0.1", start=2.3)
>>> c.verdict, c.evidence
('holds', {'start': 2.3})
>>> not_applicable("needs-gpu", "a full-scale claim", "not at this scale").verdict
'not-applicable'
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from ..errors import DamagedFile, quote
from .files import read_json, write_json

VERDICTS = ("holds", "fails", "not-applicable")
CLAIMS = "claims.json"
RERUN = "run the same `sgdlab reproduce` command again to rebuild it"


@dataclass(frozen=True)
class Claim:
    """A named, falsifiable statement and the measured numbers behind its verdict.

    `headline` is the one number a reader looks at first ("τ = 0.67", "E0 = 95"), `meaning`
    one line on what the claim says about the paper, `source` the paper it comes from
    (authors, year, title; `reproduce` fills in the experiment's paper where it is empty)."""

    id: str
    statement: str
    verdict: str
    evidence: dict[str, Any] = field(default_factory=dict)
    headline: str = ""
    meaning: str = ""
    source: str = ""

    def __post_init__(self) -> None:
        """Reject a verdict outside VERDICTS (holds, fails, not-applicable)."""
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict {self.verdict!r} is not one of {', '.join(VERDICTS)}")


def decide(
    id: str,
    statement: str,
    holds: bool | None,
    *,
    headline: str = "",
    meaning: str = "",
    source: Any = "",
    **evidence: Any,
) -> Claim:
    """A claim whose verdict is `holds` (True → holds, False → fails, None → not-applicable).
    A not-applicable claim should carry its reason as `reason="..."` in the evidence."""
    verdict = "not-applicable" if holds is None else ("holds" if holds else "fails")
    return Claim(
        id, statement, verdict, {k: plain(v) for k, v in evidence.items()}, headline, meaning, str(source)
    )


def not_applicable(id: str, statement: str, reason: str, **kw: Any) -> Claim:
    """A claim that cannot be decided, with the reason (a missing premise, missing runs)."""
    return decide(id, statement, None, reason=reason, **kw)


def plain(value: Any) -> Any:
    """Evidence as JSON-ready plain values (numpy scalars and arrays become floats and lists)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return plain(value.tolist())
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return value if math.isfinite(value) else str(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def count_verdicts(claims: Iterable[Claim]) -> dict[str, int]:
    """How many claims have each verdict, in VERDICTS order (zeros included)."""
    verdicts = [c.verdict for c in claims]
    return {v: verdicts.count(v) for v in VERDICTS}


CLAIM_FIELDS = {
    "id": str,
    "statement": str,
    "verdict": str,
    "evidence": dict,
    "headline": str,
    "meaning": str,
    "source": str,
}


def save_claims(out: str | Path, claims: Iterable[Claim]) -> Path:
    """Write OUT/claims.json (a list of claims, every field of each); returns its path."""
    path = Path(out) / CLAIMS
    write_json(path, [asdict(c) for c in claims])
    return path


def load_claims(out: str | Path) -> list[Claim]:
    """The claims a `reproduce` run wrote to OUT/claims.json; DamagedFile when the file cannot
    be read or a claim is not one (a field missing or of the wrong type, an unknown verdict)."""
    path = Path(out) / CLAIMS
    claims = []
    for i, raw in enumerate(read_json(path, list, RERUN)):
        if not isinstance(raw, dict) or set(raw) != set(CLAIM_FIELDS):
            raise DamagedFile(path, f"entry {i} is not a claim (fields {', '.join(CLAIM_FIELDS)})", RERUN)
        for key, tp in CLAIM_FIELDS.items():
            if not isinstance(raw[key], tp):
                raise DamagedFile(path, f"entry {i}: {key!r} is not a {tp.__name__}", RERUN)
        if raw["verdict"] not in VERDICTS:
            verdict = quote(raw["verdict"], 40)
            raise DamagedFile(
                path, f"entry {i}: verdict {verdict} is not one of {', '.join(VERDICTS)}", RERUN
            )
        claims.append(Claim(**raw))
    return claims
