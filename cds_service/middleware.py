"""Plain ASGI middleware for what must hold before and around every route."""

from __future__ import annotations

import logging
import re
import traceback
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .json_bodies import OrjsonResponse
from .logs import request_id
from .protocol import operation_outcome

logger = logging.getLogger("cds_service")


# An X-Request-ID taken as it came: letters, digits and . _ : - only, 128 at most (a UUID is 36
# characters, a W3C trace id 32), so it can go into a log line and a header unchanged.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


class RequestId:
    """Each request's id: the caller's X-Request-ID when well formed (an EHR or a proxy can then
    find its call in this log), else a new one (a malformed one is replaced, never echoed). Every
    line logged while the request is answered carries it (logs.request_id), and every answer sends
    it back as X-Request-ID, a 401, 413 or 500 included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((value for name, value in scope["headers"] if name.lower() == b"x-request-id"), b"")
        text = given.decode("latin-1")  # every byte a character: the pattern then refuses what is not ASCII
        current = text if _REQUEST_ID.fullmatch(text) else uuid.uuid4().hex
        header = (b"x-request-id", current.encode("ascii"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                others = [h for h in message.get("headers", []) if h[0].lower() != b"x-request-id"]
                message = {**message, "headers": [*others, header]}
            await send(message)

        token = request_id.set(current)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id.reset(token)


class BodySizeLimit:
    """413 for a body over the limit, whether announced by Content-Length or streamed."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = OrjsonResponse(
            operation_outcome("too-costly", f"the request body is larger than {self.max_bytes} bytes"), 413
        )
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None:
            if not length.isdigit():
                await OrjsonResponse(operation_outcome("invalid", "bad Content-Length header"), 400)(
                    scope, receive, send
                )
                return
            if int(length) > self.max_bytes:
                await too_large(scope, receive, send)
                return

        received = 0
        started = refused = ended = False

        async def counting_receive() -> Message:
            # Past the limit, answer 413 at once and tell the app the client has gone, so it stops
            # reading (an exception here would be turned into a 400 by the body parser).
            nonlocal received, refused, ended
            if ended:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    ended = True
                    if not started:
                        refused = True
                        await too_large(scope, receive, send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:
                return  # the 413 has been sent; whatever the app answers after it is dropped
            started = started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, counting_receive, guarded_send)


class ErrorGuard:
    """A bug answers 500 with an OperationOutcome and is logged with its hookInstance and code
    location; the exception's message and locals are not logged, as they may hold patient data."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            state: dict[str, Any] = scope.get("state", {})
            frames = traceback.extract_tb(exc.__traceback__)
            logger.error(
                "unhandled error",
                extra={
                    "hookInstance": state.get("hook_instance"),
                    "path": scope.get("path"),
                    "error": type(exc).__name__,
                    "at": " < ".join(f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno}" for f in reversed(frames[-5:])),
                },
            )
            if not started:
                body = operation_outcome("exception", "internal error; the service has logged it")
                await OrjsonResponse(body, 500)(scope, receive, send)
