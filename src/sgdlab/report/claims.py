"""Claims as a reader meets them: verdict badges and counts, the claims table (verdict,
statement with its evidence folded, the key number, what it means, the paper)."""

from __future__ import annotations

from typing import Any, Iterator

from ..store.claims import Claim, count_verdicts
from .page import as_json, details, esc, fmt, pre, table, verdict_badge

MARKS = {"holds": "✓", "fails": "✗", "not-applicable": "–"}
WORDS = {"holds": "hold", "fails": "fail", "not-applicable": "not applicable"}


def key_numbers(claim: Claim, leaves: int = 3) -> str:
    """The claim's headline, or its first few scalar evidence entries when it has none."""
    if claim.headline:
        return claim.headline
    if "reason" in claim.evidence:
        return f"reason: {claim.evidence['reason']}"
    found = list(_scalar_leaves(claim.evidence, ""))
    numbers = [(k, v) for k, v in found if not isinstance(v, str)]
    return " · ".join(f"{k} = {fmt(v)}" for k, v in (numbers or found)[:leaves])


def _scalar_leaves(value: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _scalar_leaves(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(value, (int, float, str)) and not isinstance(value, bool) and prefix:
        yield prefix, value


def verdict_counts(claims: list[Claim]) -> str:
    """A line of verdict badges with how many claims have each verdict."""
    return (
        '<p class="counts">'
        + "".join(f"<span>{verdict_badge(v)} × {n}</span>" for v, n in count_verdicts(claims).items() if n)
        + "</p>"
    )


def compact_counts(claims: list[Claim]) -> str:
    """Verdict counts in words ("3 hold · 1 fails of 4 claims"), for the first screen of the tour."""
    return (
        '<div class="claimline"><b>'
        + " · ".join(
            f'<span class="m-{v}">{n} {WORDS[v] if n != 1 else v}</span>'
            for v, n in count_verdicts(claims).items()
            if n
        )
        + f"</b> of {len(claims)} claims</div>"
    )


def claim_line(claim: Claim) -> str:
    """One claim in a line: its mark, id and first key number (the tour's first screen)."""
    return (
        f'<div class="claimline"><span class="mark m-{esc(claim.verdict)}">{MARKS[claim.verdict]}</span>'
        f"{esc(claim.id)}: {esc(key_numbers(claim, leaves=1))}</div>"
    )


def claims_table(claims: list[Claim], paper: str | None) -> str:
    """Verdict, claim (id, statement, evidence), key numbers, meaning; the paper once in the
    caption, and per claim when some claim cites another source."""
    if not claims:
        return '<p class="muted">No claims were recorded.</p>'
    sources = {c.source or paper or "" for c in claims}
    per_claim = len(sources) > 1
    caption = f"Claims of {esc(paper)}" if paper and not per_claim else ""
    meanings = any(c.meaning for c in claims)
    headers = (
        ["verdict", "claim", "measured"]
        + (["what it means"] if meanings else [])
        + (["paper"] if per_claim else [])
    )
    rows = []
    for c in claims:
        statement = f'<span class="id">{esc(c.id)}</span><br>{esc(c.statement)}' + (
            details("evidence", pre(as_json(c.evidence))) if c.evidence else ""
        )
        row = [verdict_badge(c.verdict), statement, esc(key_numbers(c))]
        if meanings:
            row.append(esc(c.meaning))
        if per_claim:
            row.append(esc(c.source or paper or ""))
        rows.append(row)
    return table(
        headers, rows, cls="claims", caption=caption, columns={1: "statement", 2: "key", 3: "meaning"}
    )
