"""The HTTP/1.1 protocol the service runs under uvicorn: its httptools protocol, with the size of a
request's header block bounded before it is parsed. uvicorn's httptools parser has no header limit
(a 48 MB junk header cost 90 MB before any middleware saw the request): past HEADER_LIMIT bytes of
a header block not yet complete, the connection is answered 431 and closed."""

from __future__ import annotations

import logging

import orjson
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from .protocol import operation_outcome

logger = logging.getLogger("cds_service")

# The request line and headers of one request. A hook call's are a few hundred bytes, a JWT up to
# 16 KB (trust/verifier.py refuses more); a reverse proxy's own limit is usually lower (docs/deployment.md).
HEADER_LIMIT = 64 * 1024
_BODY = orjson.dumps(operation_outcome("too-costly", f"request headers over {HEADER_LIMIT} bytes"))
_ANSWER = (
    STATUS_LINE[431]
    + b"content-type: application/json\r\ncontent-length: "
    + str(len(_BODY)).encode()
    + b"\r\nconnection: close\r\n\r\n"
    + _BODY
)


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """Counts the bytes of each read that ends with a request's headers still incomplete (a read
    that completes the headers or a request is not counted: it holds a body); the parser buffers
    at most HEADER_LIMIT and one read more."""

    _header_bytes = 0
    _in_body = False
    _progressed = False  # this read completed a request's headers or the request

    def data_received(self, data: bytes) -> None:
        self._progressed = False
        super().data_received(data)
        if self._progressed:
            self._header_bytes = 0
            return
        if self._in_body or self.transport.is_closing():
            return
        self._header_bytes += len(data)
        if self._header_bytes > HEADER_LIMIT:
            logger.warning("request headers over the limit", extra={"limit": HEADER_LIMIT, "status": 431})
            self.transport.write(_ANSWER)
            self.transport.close()

    def on_headers_complete(self) -> None:
        self._in_body = self._progressed = True
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_body = False
        self._progressed = True
