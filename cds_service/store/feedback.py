"""Recording the cards the service issued (shown or silent) and the hook calls it answered, and
storing the feedback EHRs send about the cards.

Issued cards and call counts are written behind: a hook call only appends to a queue (and adds to
a count) that one task flushes in a single transaction every half second (and before any feedback
is stored, and at shutdown), so that no EHR waits on the database. Feedback is written at once, in
the request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, NamedTuple
from uuid import UUID

from sqlalchemy import case, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine

from ..protocol import Card, FeedbackEntry
from .schema import choice_digest, db_time, feedback, hook_calls, issued_cards, snoozes

logger = logging.getLogger("cds_service")

_FLUSH_INTERVAL_S = 0.5
_SHUTDOWN_TRIES = 5
_MAX_PENDING = 100_000  # if the database stays away this long, the oldest records go first


class Stored(NamedTuple):
    new: int  # entries not stored before
    foreign: int  # entries about cards issued to another EHR: not stored, acting on nothing


class FeedbackRefused(ValueError):
    """An entry that contradicts the card it is about: the batch is refused (400 naming `field`)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class ReasonNotOffered(FeedbackRefused):
    """An override reason the card's kind does not offer: the EHR showed the clinician another list."""


class SuggestionNotOffered(FeedbackRefused):
    """An accepted suggestion that is not one of the card's: CDS Hooks 2.0.1, Feedback, has
    `acceptedSuggestions[].id` be "The `card.suggestion.uuid` from the CDS Hooks response"."""


class FeedbackStore:
    def __init__(
        self,
        engine: AsyncEngine,
        content_version: str,
        profile: str,
        snooze_days: Mapping[tuple[str, str], int] | None = None,
        reasons: Mapping[str, frozenset[str]] | None = None,
        reason_system: str = "",
    ) -> None:
        """`snooze_days`: per override reason (system, code), the days its override snoozes a card;
        `reasons`: per card kind, the codes (of `reason_system`) of the override reasons it offers."""
        self._engine = engine
        self._reasons = reasons
        self._reason_system = reason_system
        self._content_version = content_version
        self._profile = profile
        self._snooze_days = {reason: days for reason, days in (snooze_days or {}).items() if days > 0}
        self._insert = pg_insert if engine.dialect.name == "postgresql" else sqlite_insert
        self._pending: list[dict[str, Any]] = []
        self._calls: Counter[tuple[str, date, str]] = Counter()
        self._flushing = asyncio.Lock()

    def count_call(self, service: str, at: datetime, issuer: str | None = None) -> None:
        """One hook call answered with its cards decided, on its UTC day, from `issuer` (None:
        authentication off)."""
        self._calls[service, at.astimezone(UTC).date(), issuer or ""] += 1

    def record_cards(
        self,
        service: str,
        cards: Sequence[Card],
        issued_at: datetime,
        *,
        silent: bool = False,
        snoozed: bool = False,
        subject: str | None = None,
        evidence: Mapping[UUID, str] | None = None,
        issuer: str | None = None,
        profile: str | None = None,
    ) -> None:
        """Queue what the service said (or would have said: `silent`, `snoozed`), by card uuid: no
        patient and no value, only their keyed pseudonyms (`subject`, `evidence`) when snoozing is
        on; the EHR (`issuer`) whose call received them, and the threshold profile that decided
        them (the issuer's own, else the settings')."""
        profile = profile or self._profile
        self._pending += [
            {
                "card_uuid": str(card.uuid),
                "service": service,
                "kind": card.source.topic.code if card.source.topic else "unknown",
                "indicator": card.indicator,
                "suggestions": [{"uuid": str(s.uuid), "label": s.label} for s in card.suggestions or []],
                "content_version": self._content_version,
                "profile": profile,
                "issued_at": db_time(issued_at),
                "silent": silent,
                "snoozed": snoozed,
                "subject": subject,
                "evidence": evidence.get(card.uuid) if evidence else None,
                "issuer": issuer,
            }
            for card in cards
        ]
        if len(self._pending) > _MAX_PENDING:
            logger.error(
                "issued cards not recorded: the queue is full", extra={"dropped": len(self._pending) - _MAX_PENDING}
            )
            del self._pending[: len(self._pending) - _MAX_PENDING]

    async def flush(self) -> None:
        """Write the queued cards in one transaction; on failure keep them for the next try. A
        caller cancelled meanwhile (the recorder stopped at shutdown, a feedback request whose EHR
        hung up) does not cancel the write: it would lose the rows it had taken from the queue."""
        await asyncio.shield(self._flush())

    async def _flush(self) -> None:
        async with self._flushing:
            rows, self._pending = self._pending, []
            calls, self._calls = self._calls, Counter()
            if not rows and not calls:
                return
            try:
                async with self._engine.begin() as conn:
                    if rows:
                        await conn.execute(self._insert(issued_cards).on_conflict_do_nothing(), rows)
                    if calls:
                        await conn.execute(
                            self._add_calls(),
                            [
                                {
                                    "service": service,
                                    "day": day,
                                    "issuer": issuer,
                                    "content_version": self._content_version,
                                    "calls": n,
                                }
                                for (service, day, issuer), n in calls.items()
                            ],
                        )
            except Exception as exc:  # the database is away: keep the rows, say so, try again later
                self._pending = rows + self._pending
                self._calls.update(calls)
                logger.error(
                    "issued cards not recorded yet", extra={"pending": len(self._pending), "error": type(exc).__name__}
                )

    def _add_calls(self) -> Any:
        """An insert that adds to the day's count when it exists (other replicas write it too)."""
        insert = self._insert(hook_calls)
        return insert.on_conflict_do_update(
            index_elements=["service", "day", "issuer", "content_version"],
            set_={"calls": hook_calls.c.calls + insert.excluded.calls},
        )

    async def run(self) -> None:
        """Flush every half second until cancelled, then until all is written, a few tries at
        most: at shutdown a database busy a moment (another replica writing the same SQLite file)
        would otherwise lose what is queued."""
        try:
            while True:
                await asyncio.sleep(_FLUSH_INTERVAL_S)
                await self.flush()
        finally:
            for _ in range(_SHUTDOWN_TRIES):
                with contextlib.suppress(Exception):
                    await self.flush()
                if not self._pending and not self._calls:
                    break
                await asyncio.sleep(_FLUSH_INTERVAL_S / 5)

    async def snoozed(self, subject: str, now: datetime) -> set[tuple[str, str]]:
        """The (kind, evidence) snoozed for this patient now."""
        query = select(snoozes.c.kind, snoozes.c.evidence).where(
            snoozes.c.subject == subject, snoozes.c.until > db_time(now)
        )
        async with self._engine.connect() as conn:
            return {(kind, evidence) for kind, evidence in await conn.execute(query)}

    async def store(
        self, service: str, entries: Sequence[FeedbackEntry], received_at: datetime, issuer: str | None = None
    ) -> Stored:
        """Store every entry in one transaction (all or nothing); the same entry sent again (same
        card, outcome, instant and choice: suggestions or override reason) is kept once. Entries
        about cards this service did not issue are kept and flagged; those about a card issued to
        another `issuer` (EHR) than the caller's are counted, not stored, and act on nothing. An
        override for a reason that snoozes, of a card issued under a pseudonym, snoozes its kind
        for that patient and those results. Raises FeedbackRefused, storing nothing, when an entry
        about a card it issued gives an override reason its kind does not offer (ReasonNotOffered)
        or accepts a suggestion the card did not make (SuggestionNotOffered)."""
        await self.flush()  # so that feedback on a card issued a moment ago finds it
        uuids = {str(e.card) for e in entries}
        async with self._engine.begin() as conn:
            issued = {
                row.card_uuid: row
                for row in await conn.execute(
                    select(
                        issued_cards.c.card_uuid,
                        issued_cards.c.kind,
                        issued_cards.c.subject,
                        issued_cards.c.evidence,
                        issued_cards.c.issuer,
                        issued_cards.c.suggestions,
                    ).where(issued_cards.c.card_uuid.in_(uuids), issued_cards.c.service == service)
                )
            }
            known = {uuid: row for uuid, row in issued.items() if row.issuer == issuer}
            # About a card issued to another EHR: not stored, so that it can neither act nor take
            # the place of the receiving EHR's own entry (stored once per card, outcome, time and choice).
            theirs = [e for e in entries if str(e.card) not in issued or str(e.card) in known]
            self._check_reasons(entries, known)
            self._check_suggestions(entries, known)
            rows = [self._row(service, e, received_at, str(e.card) in known) for e in theirs]
            new = 0
            if rows:
                result = await conn.execute(
                    self._insert(feedback)
                    .on_conflict_do_nothing(index_elements=["card_uuid", "outcome", "outcome_timestamp", "choice"])
                    .returning(feedback.c.id),
                    rows,
                )
                new = len(result.all())
            if snoozing := self._snoozes(entries, known, received_at):
                insert = self._insert(snoozes)
                later = case((snoozes.c.until > insert.excluded.until, snoozes.c.until), else_=insert.excluded.until)
                await conn.execute(
                    insert.on_conflict_do_update(
                        index_elements=["subject", "kind", "evidence"],
                        set_={"until": later, "reason": insert.excluded.reason},
                    ),
                    snoozing,
                )
            return Stored(new, len(entries) - len(theirs))

    def _check_reasons(self, entries: Sequence[FeedbackEntry], known: Mapping[str, Any]) -> None:
        if self._reasons is None:
            return
        for i, entry in enumerate(entries):
            card = known.get(str(entry.card))
            coding = entry.overrideReason.reason if entry.overrideReason else None
            if card is None or coding is None:
                continue
            offered = self._reasons.get(card.kind, frozenset())
            if coding.system not in (None, self._reason_system) or coding.code not in offered:
                raise ReasonNotOffered(
                    f"feedback[{i}].overrideReason.reason",
                    f"override reason {coding.code!r} is not one a {card.kind} card offers "
                    f"(offered: {', '.join(sorted(offered)) or 'none'})",
                )

    @staticmethod
    def _check_suggestions(entries: Sequence[FeedbackEntry], known: Mapping[str, Any]) -> None:
        for i, entry in enumerate(entries):
            card = known.get(str(entry.card))
            if card is None:
                continue
            made = {s["uuid"] for s in card.suggestions}
            for j, accepted in enumerate(entry.acceptedSuggestions or ()):
                if str(accepted.id) not in made:
                    raise SuggestionNotOffered(
                        f"feedback[{i}].acceptedSuggestions[{j}].id",
                        f"is not one of the {len(made)} suggestion(s) of that {card.kind} card",
                    )

    def _snoozes(
        self, entries: Sequence[FeedbackEntry], known: Mapping[str, Any], received_at: datetime
    ) -> list[dict[str, Any]]:
        """The snoozes these entries ask for. From the time of the override, but never later than
        the time it was received (an EHR's clock cannot lengthen a snooze)."""
        found = []
        for entry in entries:
            card = known.get(str(entry.card))
            coding = entry.overrideReason.reason if entry.overrideReason else None
            if entry.outcome != "overridden" or card is None or card.evidence is None or coding is None:
                continue
            days = self._snooze_days.get((coding.system or "", coding.code))
            if days is None:
                continue
            start = min(entry.outcomeTimestamp, received_at)
            found.append(
                {
                    "subject": card.subject,
                    "kind": card.kind,
                    "evidence": card.evidence,
                    "until": db_time(start + timedelta(days=days)),
                    "reason": coding.code,
                }
            )
        return found

    @staticmethod
    def _row(service: str, entry: FeedbackEntry, received_at: datetime, known: bool) -> dict[str, Any]:
        reason = entry.overrideReason
        coding = reason.reason if reason else None
        accepted = [str(s.id) for s in entry.acceptedSuggestions or []]
        return {
            "card_uuid": str(entry.card),
            "service": service,
            "outcome": entry.outcome,
            "accepted_suggestions": accepted,
            "override_code": coding.code if coding else None,
            "override_system": coding.system if coding else None,
            "override_display": coding.display if coding else None,
            "user_comment": reason.userComment if reason else None,
            "outcome_timestamp": db_time(entry.outcomeTimestamp),
            "received_at": db_time(received_at),
            "known_card": known,
            "choice": choice_digest(accepted, coding.system if coding else None, coding.code if coding else None),
        }
