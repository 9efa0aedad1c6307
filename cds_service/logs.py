"""Logging set-up: one handler on the root logger, so the service's lines and every library's go
through the same redaction. Log lines carry hookInstance, service id, timings, card kinds and
counts, and during a request its id (`request_id`, middleware.RequestId); the filter makes sure
that no JWT, no bearer or access token, no URL path or query (they name patients) and no FHIR
resource content is written, whatever a library logs."""

from __future__ import annotations

import logging
import re
import sys
from contextvars import ContextVar
from typing import Any, Literal

from pythonjsonlogger.orjson import OrjsonFormatter as JsonFormatter

logger = logging.getLogger("cds_service")

_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "color_message"}
# A token starts where no token character stands before it: a match is tried from one place per
# token-like run, so that "eyJ" repeated without a dot costs linear time, not the run's square.
_JWT = re.compile(r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_BEARER = re.compile(r"(?i)\b(bearer)\s+[^\s\"',}]+")
_TOKEN_FIELD = re.compile(r"(?i)(access_token|id_token|refresh_token)([\"']?\s*[:=]\s*[\"']?)[^\"',}\s]+")
_URL = re.compile(r"\b(https?://[^/\s\"'<>]+)[^\s\"'<>]*")
# A URL's user name and password (`https://user:secret@host`): never written, whatever the field.
_USERINFO = re.compile(r"(?i)\b(https?://)[^/\s\"'<>@]*@")
# What is left of a JWT cut short (a refused token's claim bounded to 200 characters): its header.
_JWT_START = re.compile(r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{2,}")
_QUERY = re.compile(r"\b(https?://[^?#\s\"'<>]+)[?#][^\s\"'<>]*")
_RESOURCE = re.compile(r"[\"']resourceType[\"']")
# One pass that finds nothing in almost every string, before the five that rewrite.
_SUSPECT = re.compile(r"(?i)eyJ|bearer|token|https?://|resourceType")
WITHHELD = "[withheld: the message held FHIR resource content]"
# The fields whose URLs keep their path (never their query): a refused token's expected and received
# values (trust/middleware.py). They are the service's own endpoint URLs (aud: CDS_PUBLIC_BASE_URL
# joined with the path called, or the URL a token names instead) and the EHRs' issuer and key set
# URLs (iss, jku); none names a patient, and the path is the diagnosis: a token for
# /cds-services/a used on /cds-services/b, or a base URL missing the prefix a proxy adds.
PATHS_KEPT = frozenset({"expected", "received"})

# The id of the request being answered, set by middleware.RequestId for the request's task (and the
# tasks it starts), so that every line logged while answering it carries it, a library's included.
request_id: ContextVar[str | None] = ContextVar("request_id", default=None)


def redact(text: str, keep_paths: bool = False) -> str:
    """`keep_paths`: URLs lose only their query and fragment (PATHS_KEPT)."""
    if not _SUSPECT.search(text):
        return text
    if _RESOURCE.search(text):
        return WITHHELD
    text = _JWT_START.sub("[jwt]", _JWT.sub("[jwt]", text))
    text = _BEARER.sub(r"\1 [token]", text)
    text = _TOKEN_FIELD.sub(r"\1\2[token]", text)
    text = _USERINFO.sub(r"\1", text)
    if keep_paths:
        return _QUERY.sub(lambda m: f"{m[1]}?…", text)
    return _URL.sub(lambda m: f"{m[1]}/…" if len(m[0]) > len(m[1]) else m[1], text)


def access_path(path: str) -> str:
    """A request path as the access log may write it: no query (`?patient=...`), and no segment
    after `patients` (a demo patient's id)."""
    segments = path.split("?", 1)[0].split("/")
    if "patients" in segments:
        cut = segments.index("patients") + 1
        segments = segments[:cut] + ["…"] * (len(segments) > cut)
    return "/".join(segments)


class RequestId(logging.Filter):
    """Adds `request_id` to a line logged while a request is answered."""

    def filter(self, record: logging.LogRecord) -> bool:
        if (current := request_id.get()) is not None:
            record.request_id = current
        return True


class Redact(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "uvicorn.access" and isinstance(record.args, tuple) and len(record.args) == 5:
            client, method, path, version, status = record.args
            record.args = (client, method, access_path(str(path)), version, status)
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        fields = vars(record)
        for name in fields.keys() - _STANDARD:  # the `extra` fields
            if isinstance(value := fields[name], str):
                fields[name] = redact(value, keep_paths=name in PATHS_KEPT)
        return True


class _TextFormatter(logging.Formatter):
    """The message followed by the `extra` fields as key=value."""

    def format(self, record: logging.LogRecord) -> str:
        fields = " ".join(f"{k}={v}" for k, v in vars(record).items() if k not in _STANDARD)
        line = super().format(record)
        return f"{line} {fields}" if fields else line


def configure(fmt: Literal["json", "text"], stream: Any = None) -> None:
    # What no line writes is not collected (the Logging HOWTO, "Optimization"): the caller's source
    # location, thread and process. A hook call's line cost 75-93 µs with them, 60-70 without.
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    handler = logging.StreamHandler(stream or sys.stderr)
    json_formatter = JsonFormatter(_FORMAT, reserved_attrs=[*JsonFormatter().reserved_attrs, "color_message"])
    handler.setFormatter(json_formatter if fmt == "json" else _TextFormatter(_FORMAT))
    handler.addFilter(RequestId())  # before Redact, which sees the id as any other field
    handler.addFilter(Redact())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    # httpx logs every request URL at INFO, and a FHIR query's URL names the patient.
    for noisy in ("httpx", "httpcore", "hpack"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logger.handlers.clear()
    logger.propagate = True
