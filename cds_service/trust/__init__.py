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


class Unauthorized(Exception):
    """The caller is not trusted. `reason` is for the log only: never the token, never to the caller."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
