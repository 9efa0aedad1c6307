"""The soak: mixed traffic at a steady rate against the service running as a process, with its
feedback store on and a sick FHIR server beside it (tests/fault_server.py).

Traffic: valid hook calls with full prefetch, invalid requests, hook calls that fetch from the FHIR
server with a random fault, and feedback on the cards issued. Afterwards there must be no 5xx and
no dropped connection, resident memory and open file descriptors flat (after a warm-up), and every
feedback entry sent in the store. `make soak` runs it for three minutes; tests/test_soak.py runs a
short one in CI.

    python -m tests.soak [--seconds 180] [--rate 40]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import sqlite3
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from cds_service.fhir.client import POOL_CONNECTIONS
from tests.builders import condition, hook_request, medication, normal_electrolytes, obs
from tests.fault_server import FAULTS, FaultServer
from tests.servers import service
from tests.test_fetch import without_prefetch

URL = "/cds-services/vitamin-d-cramps"
RSS_GROWTH_LIMIT = 0.10
FD_SLACK = 2  # a journal file of the database, a connection closing
INVALID_BODIES = [
    b"{",
    b"[]",
    b'{"hook": "patient-view"}',
    b'{"hook": "order-sign", "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea", "context": {}}',
    b'{"hook": "patient-view", "hookInstance": "nope", "context": {"patientId": "p1", "userId": "u"}}',
    b"\xff\xfe" * 100,
]


@dataclass
class Figures:
    seconds: float = 0
    rate: float = 0
    requests: int = 0
    answers: Counter[str] = field(default_factory=Counter)  # "<kind> <status>"
    transport_errors: int = 0
    rss_start_mb: float = 0
    rss_end_mb: float = 0
    fds_start: int = 0  # not counting the connections pooled to the FHIR server
    fds_end: int = 0
    pooled_end: int = 0  # connections to the FHIR server, kept alive as many as were last needed
    feedback_sent: int = 0
    feedback_stored: int = 0

    @property
    def server_errors(self) -> int:
        return sum(n for key, n in self.answers.items() if key.split()[1].startswith("5"))

    def problems(self) -> list[str]:
        problems = []
        if self.server_errors:
            problems.append(f"{self.server_errors} answers were 5xx")
        if self.transport_errors:
            problems.append(f"{self.transport_errors} requests got no answer")
        unexpected = {k: n for k, n in self.answers.items() if k not in _EXPECTED}
        if unexpected:
            problems.append(f"unexpected answers: {unexpected}")
        if self.rss_end_mb > self.rss_start_mb * (1 + RSS_GROWTH_LIMIT):
            problems.append(f"resident memory grew from {self.rss_start_mb:.1f} to {self.rss_end_mb:.1f} MB")
        if self.fds_end > self.fds_start + FD_SLACK:
            problems.append(f"open file descriptors grew from {self.fds_start} to {self.fds_end}")
        if self.pooled_end > POOL_CONNECTIONS:
            problems.append(f"{self.pooled_end} connections to the FHIR server, above the pool's {POOL_CONNECTIONS}")
        if self.feedback_stored != self.feedback_sent:
            problems.append(f"{self.feedback_sent} feedback entries sent, {self.feedback_stored} stored")
        return problems


# The gzip bomb has a test of its own (test_faults: memory bounded while it inflates); here each one
# lifts the allocator's high-water mark by the 20 MB size limit, which reads as growth, not a leak.
SOAK_FAULTS = [f for f in FAULTS if f != "gzip-bomb"]
_EXPECTED = {"valid 200", "invalid 400", "fault 200", "fault 412", "feedback 200"}


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def descriptors(pid: int, fhir_port: int) -> tuple[int, int]:
    """(open file descriptors but the FHIR server's, connections to the FHIR server). The pool keeps
    as many of the latter open as the traffic last needed at once, which varies from run to run."""
    to_fhir = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()  # sl local_address rem_address st ... inode
            if int(fields[2].rsplit(":", 1)[1], 16) == fhir_port:
                to_fhir.add(f"socket:[{fields[9]}]")
    targets = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(FileNotFoundError):  # closed since the listing
            targets.append(os.readlink(fd))
    pooled = sum(1 for target in targets if target in to_fhir)
    return len(targets) - pooled, pooled


class Traffic:
    def __init__(self, base: str, fhir: str, rng: random.Random, figures: Figures) -> None:
        self.base, self.fhir, self.rng, self.figures = base, fhir, rng, figures
        self.cards: list[dict[str, Any]] = []  # issued, not yet given feedback
        self.sent: list[dict[str, Any]] = []  # feedback entries sent (each once, some resent)

    def _valid(self) -> dict[str, Any]:
        value = self.rng.choice([8, 14, 24, 45, 120, 180])
        conditions = [condition("R25.2")] if self.rng.random() < 0.5 else []
        medications = [medication("furosemide 40 MG Oral Tablet")] if self.rng.random() < 0.3 else []
        return hook_request(
            [obs("62292-8", value, "ng/mL", "2026-11-10"), obs("62292-8", 30, "ng/mL", "2026-05-01")],
            normal_electrolytes() if self.rng.random() < 0.5 else [],
            conditions=conditions,
            medications=medications,
        )

    def _feedback(self) -> dict[str, Any] | None:
        if self.sent and self.rng.random() < 0.1:
            return self.rng.choice(self.sent)  # a retry: stored once
        if not self.cards:
            return None
        card = self.cards.pop(self.rng.randrange(len(self.cards)))
        entry: dict[str, Any] = {"card": card["uuid"], "outcomeTimestamp": datetime.now(UTC).isoformat()}
        if card.get("suggestions") and self.rng.random() < 0.5:
            entry |= {"outcome": "accepted", "acceptedSuggestions": [{"id": card["suggestions"][0]["uuid"]}]}
        else:
            entry |= {"outcome": "overridden", "overrideReason": {"reason": card["overrideReasons"][0]}}
        self.sent.append(entry)
        self.figures.feedback_sent += 1
        return entry

    async def one(self, client: httpx.AsyncClient) -> None:
        roll = self.rng.random()
        kind, url, body = "valid", URL, None
        if roll < 0.2 and (entry := self._feedback()) is not None:
            kind, url, payload = "feedback", f"{URL}/feedback", {"feedback": [entry]}
        elif roll < 0.4:
            kind, body = "invalid", self.rng.choice(INVALID_BODIES)
        elif roll < 0.6:
            kind = "fault"
            fault = self.rng.choice([*SOAK_FAULTS, "ok"])
            payload = without_prefetch(server=self.fhir)
            payload["context"]["patientId"] = f"fault-{fault}"
        else:
            payload = self._valid()
        content = body if body is not None else json.dumps(payload).encode()
        self.figures.requests += 1
        try:
            answer = await client.post(url, content=content, headers={"Content-Type": "application/json"})
        except httpx.HTTPError:
            self.figures.transport_errors += 1
            return
        self.figures.answers[f"{kind} {answer.status_code}"] += 1
        if kind == "valid" and answer.status_code == 200:
            self.cards += answer.json()["cards"]

    async def run(self, seconds: float, rate: float) -> None:
        """Start one request every 1/rate seconds, whatever the answers' pace."""
        async with httpx.AsyncClient(base_url=self.base, timeout=30) as client:
            tasks: set[asyncio.Task[None]] = set()
            start = time.monotonic()
            for n in range(int(seconds * rate)):
                await asyncio.sleep(max(0.0, start + n / rate - time.monotonic()))
                task = asyncio.create_task(self.one(client))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            await asyncio.gather(*tasks)


def soak(seconds: float, rate: float, seed: int = 20261126) -> Figures:
    figures = Figures(seconds=seconds, rate=rate)
    data = {"patient": [{"resourceType": "Patient", "id": "p1"}], "vitaminD": [obs("62292-8", 12, "ng/mL")]}
    with tempfile.TemporaryDirectory(prefix="cds-soak-") as tmp, FaultServer(data).running() as fhir:
        database = Path(tmp) / "feedback.sqlite"
        settings = {
            "CDS_AUTH": "off",
            "CDS_DATABASE_URL": f"sqlite+aiosqlite:///{database}",
            "CDS_FHIR_ALLOW_INSECURE": "true",
            "CDS_FHIR_TIMEOUT_S": "0.5",
            "CDS_FHIR_DEADLINE_S": "1.5",
        }
        with service("serve", settings, "--no-access-log") as (base, process):
            warm_up = Traffic(base, fhir.base_url, random.Random(seed + 1), Figures())
            asyncio.run(warm_up.run(min(10, seconds / 3), rate))  # caches and pools fill up
            figures.rss_start_mb = _rss_mb(process.pid)
            figures.fds_start = descriptors(process.pid, fhir.port)[0]
            traffic = Traffic(base, fhir.base_url, random.Random(seed), figures)
            asyncio.run(traffic.run(seconds, rate))
            time.sleep(1)  # let the last connections close
            figures.rss_end_mb = _rss_mb(process.pid)
            figures.fds_end, figures.pooled_end = descriptors(process.pid, fhir.port)
        # The service has stopped (SIGTERM): what it held is written by now, or lost.
        cards = {entry["card"] for entry in traffic.sent}
        with sqlite3.connect(database) as db:
            rows = [row[0] for row in db.execute("SELECT card_uuid FROM feedback")]
        figures.feedback_stored = sum(1 for card in rows if card in cards)  # a retry stored twice shows here
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=180)
    parser.add_argument("--rate", type=float, default=40, help="requests started per second")
    args = parser.parse_args()
    figures = soak(args.seconds, args.rate)
    report = {k: v for k, v in vars(figures).items() if k != "answers"}
    report |= {"answers": dict(sorted(figures.answers.items())), "server_errors": figures.server_errors}
    report["problems"] = problems = figures.problems()
    when = datetime.now(UTC).isoformat(timespec="seconds")
    out = Path(__file__).parent.parent / "bench" / "results" / f"soak-{when.replace(':', '')}.json"
    out.write_text(json.dumps({"when": when, **report}, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    print("\n".join(f"PROBLEM: {p}" for p in problems) or "no problem", f"\nwritten to {out}", sep="")
    raise SystemExit(1 if problems else 0)


if __name__ == "__main__":
    main()
