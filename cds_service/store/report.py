"""Card outcomes per kind, for the people who maintain the clinical content.

A card counts once, by the latest feedback about it (an EHR may report the same card again).
Cards of a kind that ran silent, and cards an override snoozed, are counted apart, never as
issued. How often a kind fires is its cards decided (shown, silent or snoozed) over the hook calls
of the services that decide it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from .schema import db_time, feedback, hook_calls, issued_cards


@dataclass
class KindReport:
    kind: str
    issued: int = 0  # shown
    silent: int = 0  # decided for a kind that ran silent, never shown
    snoozed: int = 0  # decided, not shown: an override snoozed the kind for the patient
    calls: int = 0  # hook calls of the services that decide this kind
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

    @property
    def fire_rate(self) -> float | None:
        """Cards decided (shown, silent or snoozed) per hook call of the services that decide the kind."""
        return (self.issued + self.silent + self.snoozed) / self.calls if self.calls else None

    def as_dict(self, top: int = 3) -> dict[str, Any]:
        data = asdict(self)
        data["no_feedback"] = self.no_feedback
        data["acceptance_rate"] = self.acceptance_rate
        data["fire_rate"] = self.fire_rate
        data["override_reasons"] = dict(self.override_reasons.most_common(top))
        data["accepted_suggestions"] = dict(self.accepted_suggestions.most_common())
        return data


@dataclass
class Report:
    kinds: list[KindReport]
    feedback_on_unknown_cards: int
    calls: dict[str, int] = field(default_factory=dict)  # hook calls per service


async def build_report(engine: AsyncEngine, since: datetime | None = None) -> Report:
    kinds: dict[str, KindReport] = {}
    suggestion_labels: dict[str, str] = {}
    card_kinds: dict[str, str] = {}
    deciding: dict[str, set[str]] = {}  # kind -> the services that issued it
    query = select(
        issued_cards.c.card_uuid,
        issued_cards.c.kind,
        issued_cards.c.suggestions,
        issued_cards.c.service,
        issued_cards.c.silent,
        issued_cards.c.snoozed,
    )
    calls_query = select(hook_calls.c.service, func.sum(hook_calls.c.calls)).group_by(hook_calls.c.service)
    if since is not None:
        query = query.where(issued_cards.c.issued_at >= db_time(since))
        calls_query = calls_query.where(hook_calls.c.day >= since.astimezone(UTC).date())
    latest: dict[str, Any] = {}
    unknown = 0
    async with engine.connect() as conn:
        calls = {service: int(n) for service, n in await conn.execute(calls_query)}
        for uuid, kind, suggestions, service, silent, snoozed in await conn.execute(query):
            report = kinds.setdefault(kind, KindReport(kind))
            deciding.setdefault(kind, set()).add(service)
            if silent or snoozed:
                report.silent += silent
                report.snoozed += snoozed
                continue
            report.issued += 1
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
    for kind, services in deciding.items():
        kinds[kind].calls = sum(calls.get(service, 0) for service in services)
    return Report(sorted(kinds.values(), key=lambda k: k.kind), unknown, calls)
