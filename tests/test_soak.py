"""The soak (tests/soak.py) in short: twenty seconds of mixed, invalid and fault-injected traffic.
`make soak` runs the three-minute one whose figures docs/reliability.md gives."""

from __future__ import annotations

from tests.soak import soak


def test_a_short_soak_has_no_problem() -> None:
    figures = soak(seconds=20, rate=25)
    assert figures.requests == 500
    assert figures.feedback_sent > 20 and figures.answers["fault 412"] > 0 and figures.answers["invalid 400"] > 0
    assert figures.problems() == []
