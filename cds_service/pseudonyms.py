"""Keyed pseudonyms: all the store keeps about a patient, and about the results a card was built on.

HMAC-SHA256 under CDS_PSEUDONYM_KEY. Without the key a pseudonym cannot be linked back to a
patient, nor a digest to the results it covers (a plain hash of "12 ng/mL on 2026-11-10" would be
found by trying values). A new key makes new pseudonyms: what was stored under the old one no
longer matches anyone.
"""

from __future__ import annotations

import hashlib
import hmac


class Pseudonyms:
    def __init__(self, key: str) -> None:
        self._key = key.encode()

    def _digest(self, *parts: str) -> str:
        return hmac.new(self._key, "\0".join(parts).encode(), hashlib.sha256).hexdigest()

    def subject(self, origin: str, patient_id: str, user: str | None = None) -> str:
        """The patient, as the EHR (`origin`: the JWT issuer, else the FHIR server) names them, and
        with `user`, the clinician (`context.userId`) seeing them: whom a snooze binds to."""
        if user is None:
            return self._digest("subject", origin, patient_id)
        return self._digest("subject", origin, patient_id, "user", user)

    def evidence(self, kind: str, basis: str) -> str:
        """What a card of `kind` was built on (`Card.evidence`): the same results, the same digest."""
        return self._digest("evidence", kind, basis)
