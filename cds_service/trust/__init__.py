"""Trusting the calling EHR (CDS Hooks "Trusting CDS Clients"), strictly.

Every CDS endpoint, discovery included, needs `Authorization: Bearer <JWT>` signed with an
asymmetric key of an issuer listed in CDS_TRUSTED_ISSUERS_FILE, for the exact URL called, fresh,
and never seen before. Keys come only from the issuer's configured key set (inline, `jwks_url`, or
a `jku` the configuration allowlists); never from a URL only the token names. Every failure is a
401 that says only "unauthorized"; the reason is logged, the token never. What a caller without a
trusted token can cost is bounded: an Authorization header over 16 KB is refused before anything of
it is decoded, the `aud` expected comes from CDS_PUBLIC_BASE_URL and never from the request's Host,
and a key set is fetched once at a time per URL, whatever the number of tokens waiting on it.

One module per concern: `issuers` (the issuers file), `keys` (key sets, shared through Redis),
`replay` (the jti values seen), `verifier` (the token checks), `middleware` (the ASGI edge).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import orjson

# Characters of one value echoed into the log: a token may carry a 10 KB aud.
ECHO_MAX = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class Unauthorized(Exception):
    """The caller is not trusted. `reason` is for the log only: never the token, never to the caller;
    it is one of a fixed set (metrics.JWT_REASONS). What tells an operator more goes beside it, into
    the log line's fields (`detail`): the claim or header field that failed, what was expected, what
    came and the server's time, each bounded; never the token or its signature."""

    def __init__(
        self,
        reason: str,
        *,
        claim: str | None = None,
        expected: object = None,
        received: object = None,
        server_time: object = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        given = {"claim": claim, "expected": expected, "received": received, "server_time": server_time}
        self.detail = {name: echo(value) for name, value in given.items() if value is not None}


def echo(value: object) -> str:
    """A value from a token as a log field: JSON for what is not a string, control characters
    replaced (a text log line cannot be forged), at most ECHO_MAX characters."""
    if isinstance(value, str):
        text = value
    else:
        try:
            text = orjson.dumps(value).decode()
        except TypeError:  # an integer past 64 bits, say
            text = repr(value)
    text = _CONTROL.sub("\ufffd", text[: ECHO_MAX + 1])
    return text if len(text) <= ECHO_MAX else f"{text[:ECHO_MAX]}… (cut)"


def at(seconds: object) -> object:
    """A NumericDate claim as its number and its UTC time, for the log; anything else as it came."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        return seconds
    try:
        moment = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return seconds
    return f"{seconds} ({moment})"
