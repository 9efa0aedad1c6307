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
    """Counts a request's header bytes as they arrive, up to the blank line that ends them, and
    refuses a read that would take them past HEADER_LIMIT before the parser sees it: the parser
    never holds more. A body is never counted."""

    _header_bytes = 0
    _in_body = False
    _tail = b""  # the last bytes of the previous read: a blank line may straddle two reads

    def data_received(self, data: bytes) -> None:
        if not self._in_body:
            seen = self._tail + data
            end = seen.find(b"\r\n\r\n")
            header_part = len(data) if end < 0 else max(0, end + 4 - len(self._tail))
            if self._header_bytes + header_part > HEADER_LIMIT:
                logger.warning("request headers over the limit", extra={"limit": HEADER_LIMIT, "status": 431})
                self.transport.write(_ANSWER)
                self.transport.close()
                return
            self._header_bytes += header_part
            self._tail = seen[-3:]
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self._in_body = True
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_body = False  # the next request on the connection starts its count afresh
        self._header_bytes = 0
        self._tail = b""
