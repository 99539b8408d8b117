"""Every reproduction's smoke claims (ids, verdicts, evidence) equal their pins in
tests/fixtures/claims/, so a restructuring or a speed-up is seen to change no result. The smoke
runs are the ones each reproduction's own tests use (`smoke_reproduction`, once per session).

A claim that changes on purpose gets its pin rewritten in its own commit:
`PYTHONPATH=src python -m tests.claims_pin NAME` (see tests/claims_pin.py)."""

from __future__ import annotations

import json

import pytest
from tests.claims_pin import REGENERATE, claim_differences, differences, pin_path, pinned_form

from sgdlab.experiments import experiments


@pytest.mark.parametrize("name", experiments.names())
def test_smoke_claims_are_the_pinned_ones(name, smoke_reproduction):
    path = pin_path(name)
    assert path.is_file(), f"no pinned claims for {name}: {REGENERATE.format(name=name)}"
    _, claims = smoke_reproduction(name)
    changed = claim_differences(json.loads(path.read_text(encoding="utf-8")), pinned_form(claims))
    assert not changed, (
        f"{name}: the smoke claims differ from their pins ({len(changed)} places); if that is "
        f"intended, {REGENERATE.format(name=name)} and commit the pin on its own:\n" + "\n".join(changed[:20])
    )


def test_the_comparison_sees_a_changed_verdict_number_and_id():
    pinned = [{"id": "a", "verdict": "holds", "evidence": {"x": 1.0, "runs": [1, 2]}}]
    assert claim_differences(pinned, pinned) == []
    assert differences(1.0, 1.0 + 1e-12) == []  # float rounding of an equivalent formula
    assert differences(1.0, 1.001) == [": 1.0 → 1.001"]
    verdict = [dict(pinned[0], verdict="fails")]
    assert claim_differences(pinned, verdict) == ["a.verdict: 'holds' → 'fails'"]
    more = [dict(pinned[0], evidence={"x": 1.0, "runs": [1, 2, 3]})]
    assert claim_differences(pinned, more) == ["a.evidence.runs: 2 entries pinned, 3 now"]
    assert claim_differences(pinned, [dict(pinned[0], id="b")]) == ["claim ids: ['a'] → ['b']"]
    assert differences(True, 1) == [": True → 1"]
