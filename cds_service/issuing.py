"""Issuing the cards a service decided: which are shown, which an override snoozed, and the record
and the counts of each, shown, silent or snoozed."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any
from uuid import UUID

from fastapi import Request

from .metrics import CARDS, SILENT_CARDS, SNOOZED_CARDS, series
from .policies import Policy
from .protocol import Card, HookRequest
from .pseudonyms import Pseudonyms
from .services.base import Outcome, kind_of
from .store.feedback import FeedbackStore
from .trust.issuers import SnoozeScope

logger = logging.getLogger("cds_service")


def _subject(pseudonyms: Pseudonyms, request: Request, hook_request: HookRequest, scope: SnoozeScope) -> str | None:
    """Whom a snooze binds to: the patient as the EHR names them (the JWT issuer, else the FHIR
    server) and, in the clinician scope, the user the hook names (`context.userId`): one
    clinician's override then hides the card from that clinician alone. None (no snoozing) without
    what the scope needs."""
    patient = hook_request.context.get("patientId")
    user = hook_request.context.get("userId")
    if scope == "off" or not isinstance(patient, str) or (scope == "clinician" and not isinstance(user, str)):
        return None
    fhir_server = str(hook_request.fhirServer) if hook_request.fhirServer is not None else ""
    origin = getattr(request.state, "issuer", None) or fhir_server
    return pseudonyms.subject(origin, patient, user if scope == "clinician" else None)


async def _snooze(
    request: Request, policy: Policy, hook_request: HookRequest, cards: list[Card], now: datetime
) -> tuple[list[Card], list[Card], str | None, dict[UUID, str]]:
    """The cards to show, those an override snoozed, and the keyed pseudonyms of whom a snooze binds
    to (the patient, or the clinician and patient: the policy's scope) and of the evidence of each
    card that could be snoozed, to record with them; with no CDS_PSEUDONYM_KEY, every card and
    nothing about the patient. Only a kind the content lets snooze can be held back, never a
    critical card, and a store that cannot be read holds back nothing: a card too many, never one
    lost."""
    pseudonyms: Pseudonyms | None = request.app.state.pseudonyms
    snoozable: frozenset[str] = request.app.state.snoozable
    candidates = [c for c in cards if kind_of(c) in snoozable and c.indicator != "critical"]
    if pseudonyms is None or not candidates:
        return cards, [], None, {}
    subject = _subject(pseudonyms, request, hook_request, policy.snooze_scope)
    if subject is None:
        return cards, [], None, {}
    evidence = {card.uuid: pseudonyms.evidence(kind_of(card), card.evidence) for card in candidates}
    try:
        snoozed = await request.app.state.store.snoozed(subject, now)
    except Exception as exc:  # the database is away
        logger.error("snoozes not read: every card shown", extra={"error": type(exc).__name__})
        snoozed = set()
    held = [c for c in candidates if (kind_of(c), evidence[c.uuid]) in snoozed]
    return [c for c in cards if c not in held], held, subject, evidence


async def issue(
    request: Request, policy: Policy, service: str, hook_request: HookRequest, outcome: Outcome, now: datetime
) -> tuple[list[Card], dict[str, Any]]:
    """The cards to show, once the snoozed ones are set apart; every card decided is counted and
    recorded (written behind), shown, silent or snoozed, with the issuer and the threshold profile
    that decided it. Also what the log line says of them."""
    shown, snoozed, subject, evidence = await _snooze(request, policy, hook_request, outcome.cards, now)
    store: FeedbackStore = request.app.state.store
    issuer = getattr(request.state, "issuer", None)
    store.count_call(service, now, issuer)
    profile = policy.profile
    store.record_cards(service, shown, now, subject=subject, evidence=evidence, issuer=issuer, profile=profile)
    store.record_cards(service, outcome.silent, now, silent=True, issuer=issuer, profile=profile)
    store.record_cards(service, snoozed, now, snoozed=True, issuer=issuer, profile=profile)
    log = dict(outcome.log)
    for counter, cards, name in (
        (CARDS, shown, None),
        (SILENT_CARDS, outcome.silent, "silent"),
        (SNOOZED_CARDS, snoozed, "snoozed"),
    ):
        for card in cards:
            series(counter, kind_of(card), card.indicator, policy.label).inc()
        if name and cards:
            log[name] = ",".join(map(kind_of, cards))
    return shown, log
