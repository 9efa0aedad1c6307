"""Card outcomes per kind, for the people who maintain the clinical content.

A card counts once, by the latest feedback about it (an EHR may report the same card again).
Cards of a kind that ran silent, and cards an override snoozed, are counted apart, never as
issued. How often a kind fires is its cards decided (shown, silent or snoozed) over the hook calls
of the services that decide it.

Each kind is counted apart per content version and per issuer (the EHR whose call received its
cards): a content update, or an EHR running another threshold profile, never mixes its rates with
another's. An empty issuer is authentication off; hook calls counted before the store kept their
issuer and content version (migration 0007) are under empty ones.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, and_, case, or_, select, true
from sqlalchemy.ext.asyncio import AsyncEngine

from .schema import feedback, hook_calls, issued_cards


@dataclass
class KindReport:
    kind: str
    content_version: str = ""  # the version of cards/ that decided the cards
    issuer: str = ""  # the EHR (the JWT's iss) whose calls received them; "": authentication off
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
    def override_rate(self) -> float | None:
        """Overridden among the cards issued."""
        return self.overridden / self.issued if self.issued else None

    @property
    def fire_rate(self) -> float | None:
        """Cards decided (shown, silent or snoozed) per hook call of the services that decide the kind."""
        return (self.issued + self.silent + self.snoozed) / self.calls if self.calls else None

    def as_dict(self, top: int = 3) -> dict[str, Any]:
        data = asdict(self)
        data["no_feedback"] = self.no_feedback
        data["acceptance_rate"] = self.acceptance_rate
        data["override_rate"] = self.override_rate
        data["fire_rate"] = self.fire_rate
        data["override_reasons"] = dict(self.override_reasons.most_common(top))
        data["accepted_suggestions"] = dict(self.accepted_suggestions.most_common())
        return data


@dataclass
class WeekReport:
    start: date  # the Monday (UTC) the week begins
    calls: dict[str, int]  # hook calls per service
    kinds: list[KindReport]


@dataclass
class Report:
    kinds: list[KindReport]  # over the whole range
    feedback_on_unknown_cards: int
    calls: dict[str, int] = field(default_factory=dict)  # hook calls per service
    weeks: list[WeekReport] = field(default_factory=list)  # the same, week by week


# When a clinician acted on a card, as far as the service can know: the stated outcomeTimestamp,
# but never later than the moment the feedback arrived, so that an EHR's clock running ahead (or a
# future timestamp) cannot make its answer the latest for good. The stored value stays as sent.
_acted_at = case(
    (feedback.c.outcome_timestamp > feedback.c.received_at, feedback.c.received_at),
    else_=feedback.c.outcome_timestamp,
)


def week_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


async def build_report(engine: AsyncEngine, since: date | None = None, until: date | None = None) -> Report:
    """Cards issued from `since` to `until` (UTC days, both included), in total and per week. One
    query for the cards, one for the feedback, one for the hook calls."""
    cards = select(
        issued_cards.c.card_uuid,
        issued_cards.c.kind,
        issued_cards.c.content_version,
        issued_cards.c.issuer,
        issued_cards.c.suggestions,
        issued_cards.c.service,
        issued_cards.c.silent,
        issued_cards.c.snoozed,
        issued_cards.c.issued_at,
    )
    calls_query = select(
        hook_calls.c.service, hook_calls.c.day, hook_calls.c.content_version, hook_calls.c.issuer, hook_calls.c.calls
    )
    start = datetime.combine(since, time.min) if since is not None else None
    end = datetime.combine(until + timedelta(days=1), time.min) if until is not None else None
    if start is not None:
        cards = cards.where(issued_cards.c.issued_at >= start)
        calls_query = calls_query.where(hook_calls.c.day >= since)
    if end is not None:
        cards = cards.where(issued_cards.c.issued_at < end)
        calls_query = calls_query.where(hook_calls.c.day <= until)
    # Only the feedback the range can count, and only the columns the tally reads (a user comment
    # never leaves the database for a report): about the cards issued in the range, or, about no
    # card issued, received in it.
    received: list[ColumnElement[bool]] = [feedback.c.known_card.is_(False)]
    if start is not None:
        received.append(feedback.c.received_at >= start)
    if end is not None:
        received.append(feedback.c.received_at < end)
    about = feedback.c.card_uuid.in_(cards.with_only_columns(issued_cards.c.card_uuid).scalar_subquery())
    answers_query = (
        select(
            feedback.c.card_uuid,
            feedback.c.outcome,
            feedback.c.accepted_suggestions,
            feedback.c.override_code,
            feedback.c.known_card,
            feedback.c.received_at,
        )
        .where(or_(about, and_(*received)) if start is not None or end is not None else true())
        .order_by(_acted_at, feedback.c.id)
    )
    async with engine.connect() as conn:
        calls = [Calls(row[0], row[1], row[2], row[3], int(row[4])) for row in await conn.execute(calls_query)]
        issued = list(await conn.execute(cards))
        answers = list(await conn.execute(answers_query))
    return _tally(issued, answers, calls, start, end)


class Calls(NamedTuple):
    """A row of hook_calls."""

    service: str
    day: date
    content_version: str
    issuer: str
    calls: int


# A kind's rows: by kind, content version and issuer.
_Key = tuple[str, str, str]
# Whose hook calls: service, content version, issuer.
_CallKey = tuple[str, str, str]


def _ordered(reports: dict[_Key, KindReport]) -> list[KindReport]:
    return [reports[key] for key in sorted(reports)]


def _tally(
    issued: list[Any],
    answers: list[Any],
    calls: list[Calls],
    start: datetime | None,
    end: datetime | None,
) -> Report:
    tally = _Tally()
    tally.issued(issued)
    unknown = tally.answers(answers, start, end)
    per_service, per_week = tally.calls(calls)
    weeks = [
        WeekReport(week, dict(per_week.get(week, {})), _ordered(tally.weekly[week])) for week in sorted(tally.weekly)
    ]
    return Report(_ordered(tally.total), unknown, dict(per_service), weeks)


@dataclass
class _Tally:
    """Each card kind's counts (per content version and issuer), in all and by week, filled from
    the three tables in turn."""

    total: dict[_Key, KindReport] = field(default_factory=dict)
    weekly: dict[date, dict[_Key, KindReport]] = field(default_factory=dict)
    deciding: dict[_Key, set[str]] = field(default_factory=dict)  # the services that issued each row's cards
    shown: dict[str, tuple[KindReport, KindReport]] = field(default_factory=dict)  # card uuid -> total, week
    labels: dict[str, str] = field(default_factory=dict)  # suggestion uuid -> label

    def issued(self, rows: list[Any]) -> None:
        for uuid, kind, version, issuer, suggestions, service, silent, snoozed, issued_at in rows:
            key = (kind, version, issuer or "")
            reports = (
                self.total.setdefault(key, KindReport(*key)),
                self.weekly.setdefault(week_of(issued_at.date()), {}).setdefault(key, KindReport(*key)),
            )
            self.deciding.setdefault(key, set()).add(service)
            for report in reports:
                report.silent += silent
                report.snoozed += snoozed
                report.issued += not (silent or snoozed)
            if not (silent or snoozed):
                self.shown[uuid] = reports
                self.labels.update({s["uuid"]: s["label"] for s in suggestions})

    def answers(self, rows: list[Any], start: datetime | None, end: datetime | None) -> int:
        """Counts each shown card's last answer; returns the answers in range about no card issued."""
        latest: dict[str, Any] = {}
        unknown = 0
        for row in rows:
            if row.card_uuid in self.shown:
                latest[row.card_uuid] = row  # ordered by time: the last one wins
            elif (
                not row.known_card
                and (start is None or row.received_at >= start)
                and (end is None or row.received_at < end)
            ):
                unknown += 1
        for uuid, row in latest.items():
            for report in self.shown[uuid]:
                if row.outcome == "accepted":
                    report.accepted += 1
                    for suggestion in row.accepted_suggestions:
                        report.accepted_suggestions[self.labels.get(suggestion, "unknown suggestion")] += 1
                else:
                    report.overridden += 1
                    report.override_reasons[row.override_code or "no reason given"] += (
                        1  # by code: two codes never merge
                    )
        return unknown

    def calls(self, rows: list[Calls]) -> tuple[Counter[str], dict[date, Counter[str]]]:
        """Hook calls per service, in all and by week; each kind's calls are those of the services
        that issue it, under the same content version and from the same issuer, for its fire rate."""
        per_service: Counter[str] = Counter()
        per_week: dict[date, Counter[str]] = {}
        whose: Counter[_CallKey] = Counter()
        whose_week: dict[date, Counter[_CallKey]] = {}
        for row in rows:
            week = week_of(row.day)
            per_service[row.service] += row.calls
            per_week.setdefault(week, Counter())[row.service] += row.calls
            call_key = (row.service, row.content_version, row.issuer)
            whose[call_key] += row.calls
            whose_week.setdefault(week, Counter())[call_key] += row.calls
            self.weekly.setdefault(week, {})
        for key, services in self.deciding.items():
            _, version, issuer = key
            self.total[key].calls = sum(whose[s, version, issuer] for s in services)
            for week, week_kinds in self.weekly.items():
                if key in week_kinds:
                    week_kinds[key].calls = sum(whose_week.get(week, Counter())[s, version, issuer] for s in services)
        return per_service, per_week


def as_json(report: Report, since: date | None, until: date | None) -> dict[str, Any]:
    """The report as `cds-service report --json` and the governance page's export give it."""
    return {
        "since": since.isoformat() if since else None,
        "until": until.isoformat() if until else None,
        "hook_calls": report.calls,
        "kinds": [k.as_dict() for k in report.kinds],
        "weeks": [
            {"week": w.start.isoformat(), "hook_calls": w.calls, "kinds": [k.as_dict() for k in w.kinds]}
            for w in report.weeks
        ],
        "feedback_on_unknown_cards": report.feedback_on_unknown_cards,
    }


CSV_COLUMNS = (
    "week",
    "kind",
    "content_version",
    "issuer",
    "hook_calls",
    "issued",
    "silent",
    "snoozed",
    "fire_rate",
    "accepted",
    "overridden",
    "no_feedback",
    "acceptance_rate",
    "override_rate",
    "top_override_reasons",
    "accepted_suggestions",
)


def as_csv(report: Report) -> str:
    """One row per week and card kind. A text cell that a spreadsheet would run as a formula
    (override reasons come from EHRs) is prefixed with a quote."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for week in report.weeks:
        for k in week.kinds:
            writer.writerow(
                [
                    week.start.isoformat(),
                    k.kind,
                    k.content_version,
                    _cell(k.issuer),
                    k.calls,
                    k.issued,
                    k.silent,
                    k.snoozed,
                    _rate(k.fire_rate),
                    k.accepted,
                    k.overridden,
                    k.no_feedback,
                    _rate(k.acceptance_rate),
                    _rate(k.override_rate),
                    _cell("; ".join(f"{r} ({n})" for r, n in k.override_reasons.most_common(3))),
                    _cell("; ".join(f"{r} ({n})" for r, n in k.accepted_suggestions.most_common())),
                ]
            )
    return out.getvalue()


def _rate(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def _cell(text: str) -> str:
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
