"""The tables. Nothing here is PHI: no patient identifier, no value, only what the service said
and what the clinician answered."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    DateTime,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

metadata = MetaData()


def db_time(moment: datetime) -> datetime:
    """Times are stored as naive UTC, the same on SQLite and PostgreSQL."""
    return moment.astimezone(UTC).replace(tzinfo=None)


def choice_digest(suggestions: Iterable[str], reason_system: str | None, reason_code: str | None) -> str:
    """What the clinician chose, as one short key: the suggestions accepted, or the override
    reason. Two entries about one card at one instant are the same entry (sent again) only if
    they agree on it; overrides for two reasons are two answers (CDS Hooks 2.0.1, Feedback: a
    card may be reported more than once). Hashed, so that the unique index stays small whatever
    the EHR sends (100 suggestion ids, a 500-character system)."""
    chosen = [sorted(suggestions), reason_system or "", reason_code or ""]
    return hashlib.sha256(json.dumps(chosen).encode()).hexdigest()


issued_cards = Table(
    "issued_cards",
    metadata,
    Column("card_uuid", String(36), primary_key=True),
    Column("service", String(100), nullable=False),
    Column("kind", String(100), nullable=False, index=True),
    Column("indicator", String(20), nullable=False),
    Column("suggestions", JSON, nullable=False),  # [{"uuid": ..., "label": ...}]
    Column("content_version", String(100), nullable=False),
    Column("profile", String(100), nullable=False),
    Column("issued_at", DateTime(), nullable=False, index=True),  # UTC
    Column("silent", Boolean, nullable=False, server_default=false()),  # its kind ran silent: never shown
    Column("snoozed", Boolean, nullable=False, server_default=false()),  # an override snoozed it: never shown
    # With CDS_PSEUDONYM_KEY, for a card shown: the keyed pseudonym of the patient and the keyed
    # digest of the results it was built on (pseudonyms.py), so that an override can snooze it.
    Column("subject", String(64)),
    Column("evidence", String(64)),
    # The trusted EHR (the JWT's iss) whose call received the card; None with authentication off.
    # Feedback about the card from another issuer does not act on it.
    Column("issuer", Text),
)

# A card kind not shown again to one patient (pseudonym) while the results it was built on stay
# the same, until `until`: what an override with a snoozing reason leaves behind.
snoozes = Table(
    "snoozes",
    metadata,
    Column("subject", String(64), primary_key=True),
    Column("kind", String(100), primary_key=True),
    Column("evidence", String(64), primary_key=True),
    Column("until", DateTime(), nullable=False),  # UTC
    Column("reason", String(200), nullable=False),
)

# Hook calls answered with cards decided (200), per service, UTC day, issuer and content version:
# the denominator of how often a card kind fires. Every replica adds its own counts to the same rows.
hook_calls = Table(
    "hook_calls",
    metadata,
    Column("service", String(100), nullable=False),
    Column("day", Date, nullable=False),
    Column("issuer", Text, nullable=False, server_default=""),  # "": authentication off
    Column("content_version", String(100), nullable=False, server_default=""),  # "": counted before 0007
    Column("calls", Integer, nullable=False),
    PrimaryKeyConstraint("service", "day", "issuer", "content_version", name="pk_hook_calls_by_issuer"),
)

feedback = Table(
    "feedback",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("card_uuid", String(36), nullable=False, index=True),
    Column("service", String(100), nullable=False),
    Column("outcome", String(20), nullable=False),
    Column("accepted_suggestions", JSON, nullable=False),  # [suggestion uuid, ...]
    Column("override_code", String(200)),
    Column("override_system", String(500)),
    Column("override_display", String(500)),
    Column("user_comment", Text),
    Column("outcome_timestamp", DateTime(), nullable=False),  # UTC
    Column("received_at", DateTime(), nullable=False),  # UTC
    Column("known_card", Boolean, nullable=False),  # the service issued this card
    # choice_digest: which suggestions or reason ("" only for rows written around the store)
    Column("choice", String(64), nullable=False, server_default=""),
    UniqueConstraint("card_uuid", "outcome", "outcome_timestamp", "choice", name="uq_feedback_entry"),
)

# Sessions of the governance page's login form (admin/gate.py): the SHA-256 of each session's
# random cookie, until it expires or its holder signs out, shared by every worker and replica.
admin_sessions = Table(
    "admin_sessions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("expires_at", DateTime(), nullable=False),  # UTC
)
