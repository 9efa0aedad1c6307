"""Where a hook call's CPU goes, by stage: the service's ASGI app called in process with a
workload's request, each stage's functions timed on the thread that runs them.

A stage is the functions listed for it below; time spent in a function of one stage called from
another's is the inner stage's (a stack, so nothing is counted twice). `edge` is the rest of the
call: FastAPI, the middleware, the metrics and the log line, the response. `record` adds the CPU of
the database's own thread (aiosqlite), where the issued cards are written behind. Run:
`.venv/bin/python -m bench.stages` (part of `make bench`).
"""

from __future__ import annotations

import asyncio
import functools
import gc
import inspect
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any

import orjson
from asgi_lifespan import LifespanManager

import cds_service.hook_routes
import cds_service.services.record
import cds_service.services.vitamin_d_cramps
from bench.workloads import workloads
from cds_service.app import create_app
from cds_service.json_bodies import JsonRequest
from cds_service.services.record import RecordReader
from cds_service.services.vitamin_d_cramps import VitaminDCramps
from cds_service.settings import Settings

STAGES = ("parse", "read", "decide", "render", "record", "edge")
PATH = "/cds-services/vitamin-d-cramps"


def _targets() -> list[tuple[Any, str, str]]:
    """(owner, attribute, stage): the functions of each stage, where the service looks them up."""
    import fastapi.dependencies.utils

    return [
        (JsonRequest, "json", "parse"),
        (fastapi.dependencies.utils, "request_body_to_args", "parse"),  # the HookRequest model
        (RecordReader, "read", "read"),
        (cds_service.services.record, "assess_vitamin_d", "decide"),
        (cds_service.services.record, "assess_electrolytes", "decide"),
        (cds_service.services.record, "assess_context", "decide"),
        (cds_service.services.vitamin_d_cramps, "plan_chart", "decide"),
        (VitaminDCramps, "_render", "render"),
        (cds_service.hook_routes, "issue", "record"),
    ]


class StageClock:
    """Thread CPU time, charged to the innermost stage running."""

    def __init__(self) -> None:
        self.spent = dict.fromkeys(STAGES, 0)
        self._stack = ["edge"]
        self._since = time.thread_time_ns()

    def _switch(self, stage: str | None) -> None:
        now = time.thread_time_ns()
        self.spent[self._stack[-1]] += now - self._since
        self._since = now
        if stage is None:
            self._stack.pop()
        else:
            self._stack.append(stage)

    def wrap(self, function: Callable[..., Any], stage: str) -> Callable[..., Any]:
        if inspect.iscoroutinefunction(function):

            @functools.wraps(function)
            async def timed_async(*args: Any, **kwargs: Any) -> Any:
                self._switch(stage)
                try:
                    return await function(*args, **kwargs)
                finally:
                    self._switch(None)

            return timed_async

        @functools.wraps(function)
        def timed(*args: Any, **kwargs: Any) -> Any:
            self._switch(stage)
            try:
                return function(*args, **kwargs)
            finally:
                self._switch(None)

        return timed

    def settle(self) -> None:
        self._switch("edge")
        self._stack.pop()


@contextmanager
def instrumented(clock: StageClock) -> Iterator[None]:
    saved = [(owner, name, getattr(owner, name)) for owner, name, _ in _targets()]
    try:
        for (owner, name, stage), (_, _, function) in zip(_targets(), saved, strict=True):
            setattr(owner, name, clock.wrap(function, stage))
        yield
    finally:
        for owner, name, function in saved:
            setattr(owner, name, function)


async def measure(workload: str = "a-typical", calls: int = 300, rounds: int = 5) -> dict[str, float]:
    """CPU ms per call by stage (the median over `rounds`), and the whole call's uninstrumented."""
    work = tempfile.mkdtemp(prefix="cds-stages-")
    settings = Settings(
        auth="off",
        database_url=f"sqlite+aiosqlite:///{work}/stages.sqlite",
        log_format="json",
        fhir_allow_insecure=True,
    )
    app = create_app(settings)
    body = orjson.dumps(workloads("http://127.0.0.1:9/fhir")[workload])
    headers = [(b"host", b"localhost"), (b"content-type", b"application/json")]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": PATH,
        "raw_path": PATH.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [*headers, (b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }

    async def call() -> None:
        status: list[int] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])

        await app(dict(scope), receive, send)
        if status != [200]:
            raise RuntimeError(f"the service answered {status}")

    async def run(clock: StageClock | None) -> float:
        process = time.process_time_ns()
        for _ in range(calls):
            await call()
        await asyncio.sleep(0.05)  # the records written behind
        if clock is not None:
            clock.settle()
        return (time.process_time_ns() - process) / calls / 1e6

    by_stage: dict[str, list[float]] = {stage: [] for stage in STAGES}
    whole: list[float] = []
    async with LifespanManager(app):
        gc.freeze()
        for _ in range(50):
            await call()
        for _ in range(rounds):
            whole.append(await run(None))
            clock = StageClock()
            with instrumented(clock):
                process = await run(clock)
            main_thread = sum(clock.spent.values()) / calls / 1e6
            for stage in STAGES:
                by_stage[stage].append(clock.spent[stage] / calls / 1e6)
            by_stage["record"][-1] += max(process - main_thread, 0.0)  # the database's thread
    return {stage: statistics.median(v) for stage, v in by_stage.items()} | {"call": statistics.median(whole)}


def report(workload: str = "a-typical") -> dict[str, float]:
    if (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(0, {0})
    figures = asyncio.run(measure(workload))
    print(f"\n{workload}, in process: CPU ms per call by stage (median of 5 runs of 300 calls)")
    print("  " + " ".join(f"{s:>8}" for s in (*STAGES, "call")))
    print("  " + " ".join(f"{figures[s]:8.3f}" for s in (*STAGES, "call")))
    return {k: round(v, 4) for k, v in figures.items()}


if __name__ == "__main__":
    report()
