"""Card outcomes per kind, for the people who maintain the clinical content.

A card counts once, by the latest feedback about it (an EHR may report the same card again).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from .schema import db_time, feedback, issued_cards


@dataclass
class KindReport:
    kind: str
    issued: int = 0
    accepted: int = 0
    overridden: int = 0
    override_reasons: Counter[str] = field(default_factory=Counter)
    accepted_suggestions: Counter[str] = field(default_factory=Counter)

    @property
    def no_feedback(self) -> int:
        return self.issued - self.accepted - self.overridden

    @property
    def acceptance_rate(self) -> float | None:
        """Accepted among the cards issued."""
        return self.accepted / self.issued if self.issued else None

    def as_dict(self, top: int = 3) -> dict[str, Any]:
        data = asdict(self)
        data["no_feedback"] = self.no_feedback
        data["acceptance_rate"] = self.acceptance_rate
        data["override_reasons"] = dict(self.override_reasons.most_common(top))
        data["accepted_suggestions"] = dict(self.accepted_suggestions.most_common())
        return data


@dataclass
class Report:
    kinds: list[KindReport]
    feedback_on_unknown_cards: int


async def build_report(engine: AsyncEngine, since: datetime | None = None) -> Report:
    kinds: dict[str, KindReport] = {}
    suggestion_labels: dict[str, str] = {}
    card_kinds: dict[str, str] = {}
    query = select(issued_cards.c.card_uuid, issued_cards.c.kind, issued_cards.c.suggestions)
    if since is not None:
        query = query.where(issued_cards.c.issued_at >= db_time(since))
    latest: dict[str, Any] = {}
    unknown = 0
    async with engine.connect() as conn:
        for uuid, kind, suggestions in await conn.execute(query):
            kinds.setdefault(kind, KindReport(kind)).issued += 1
            card_kinds[uuid] = kind
            suggestion_labels.update({s["uuid"]: s["label"] for s in suggestions})
        rows = await conn.execute(select(feedback).order_by(feedback.c.outcome_timestamp, feedback.c.id))
        for row in rows:
            if row.card_uuid in card_kinds:
                latest[row.card_uuid] = row  # ordered by time: the last one wins
            elif not row.known_card and (since is None or row.received_at >= db_time(since)):
                unknown += 1
    for uuid, row in latest.items():
        report = kinds[card_kinds[uuid]]
        if row.outcome == "accepted":
            report.accepted += 1
            for suggestion in row.accepted_suggestions:
                report.accepted_suggestions[suggestion_labels.get(suggestion, "unknown suggestion")] += 1
        else:
            report.overridden += 1
            report.override_reasons[row.override_display or row.override_code or "no reason given"] += 1
    return Report(sorted(kinds.values(), key=lambda k: k.kind), unknown)
