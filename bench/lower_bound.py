"""A lower bound for workload (a): the typical patient's clinical work written as leanly as Python
allows, timed in process beside the baseline's whole call and the service's.

Not the service, and nothing runs it but this script and its test. It keeps what any
implementation must do for this patient: select the Observations by code, validate the fields it
reads (the service's msgspec model), recognise and convert units and ranges (the content's unit
table), date each result, match the conditions and medicines (the content's indexes), classify
vitamin D (the profile), find the electrolytes not checked within the window, and write the two
cards: escaped values, a data table, suggestions. It leaves out everything this patient does not
reach (unreadable results, comparators, hypercalcaemia, Payne, pregnancy, order and snooze rules,
the log line, the issued-card record) and writes card text with f-strings, filler where the
catalogue has prose; the codes, units, names and thresholds are the content's.

If this sketch costs more than 60% of the baseline's throughput allows, no Python implementation
of the rules is likely to meet issue 17's target for (a). Run: `.venv/bin/python -m bench.lower_bound`.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import orjson
from asgi_lifespan import LifespanManager

from bench.baseline import make_app
from bench.workloads import workloads
from cds_service.app import create_app
from cds_service.clinical.cramp_context import ConditionFact, CrampContext, MedicationFact, assess_context
from cds_service.content.loader import Content, load_content
from cds_service.escaping import markdown
from cds_service.fhir.labs import Observation, parse_fhir_datetime
from cds_service.fhir.models import Quantity, read_as
from cds_service.fhir.units import UnitTable
from cds_service.settings import Settings

_TABLE_HEAD = "| Test | LOINC | Result | Date | Note |\n| --- | --- | --- | --- | --- |\n"
_PROSE = "." * 300  # where the catalogue's prose would be: its length, not its words


class Result(NamedTuple):
    analyte: str
    code: str
    name: str
    value: float
    unit: str
    when: datetime
    low: float | None
    high: float | None


class Decision(NamedTuple):
    status: str  # of vitamin D: deficient or insufficient, the two this sketch can tell
    vitamin_d: tuple[Result, ...]  # newest first
    missing: tuple[str, ...]  # electrolytes not checked within the window


class Sketch:
    """The clinical work of workload (a), and only that."""

    def __init__(self, content: Content, profile: str = "endocrine-2011") -> None:
        self.content = content
        self.roles = content.code_roles
        self.system = content.analytes.system
        self.units = UnitTable(content.analytes.units)
        self.profile = content.profile(profile)
        self.windows = content.thresholds.windows
        self.statuses = frozenset(content.analytes.usable_statuses)

    def labs(self, body: dict[str, Any], patient: str) -> list[Result]:
        out: list[Result] = []
        subject = f"Patient/{patient}"
        for key in ("vitaminD", "electrolytes"):
            for entry in body["prefetch"][key]["entry"]:
                raw = entry["resource"]
                if raw.get("resourceType") != "Observation":
                    continue
                code = next(
                    (
                        c["code"]
                        for c in raw["code"]["coding"]
                        if c.get("system") == self.system and c.get("code") in self.roles
                    ),
                    None,
                )
                if code is None:
                    continue
                obs = read_as(Observation, raw)
                status = obs.status.strip().lower()
                if obs.subject is None or obs.subject.reference != subject or status not in self.statuses:
                    continue
                analyte, _, name = self.roles[code]
                q = obs.valueQuantity
                if q is None or q.value is None or obs.effectiveDateTime is None:
                    continue
                unit = self.units.recognise(analyte, q.code, q.system, q.unit)
                if unit is None:
                    continue
                ranges = obs.referenceRange[:1]
                low = self._bound(analyte, ranges[0].low) if ranges else None
                high = self._bound(analyte, ranges[0].high) if ranges else None
                value = self.units.to_canonical(analyte, q.value, unit)
                when = parse_fhir_datetime(obs.effectiveDateTime)
                out.append(Result(analyte, code, name, value, self.units.canonical(analyte), when, low, high))
        return out

    def _bound(self, analyte: str, q: Quantity | None) -> float | None:
        if q is None or q.value is None:
            return None
        unit = self.units.recognise(analyte, q.code, q.system, q.unit)
        return None if unit is None else self.units.to_canonical(analyte, q.value, unit)

    def context(self, body: dict[str, Any], patient: str, as_of: datetime) -> CrampContext:
        """The content's own matching (already lean: one pass, prepared indexes), on facts read
        from the raw JSON without a model."""
        subject = f"Patient/{patient}"
        conditions = [
            ConditionFact(frozenset((c["system"], c["code"].replace(".", "")) for c in r["code"]["coding"]))
            for r in (e["resource"] for e in body["prefetch"]["conditions"]["entry"])
            if r["subject"]["reference"] == subject and r["clinicalStatus"]["coding"][0]["code"] == "active"
        ]
        medications = []
        for entry in body["prefetch"]["medications"]["entry"]:
            r = entry["resource"]
            if r["subject"]["reference"] != subject or r["status"] != "active":
                continue
            concept = r["medicationCodeableConcept"]
            codings = concept.get("coding", [])
            names = "\n".join([c.get("display", "") for c in codings] + [concept.get("text", "")]).lower()
            medications.append(MedicationFact(frozenset(c["code"] for c in codings), names))
        return assess_context(conditions, medications, self.content.context, as_of)

    def decide(self, labs: list[Result], as_of: datetime) -> Decision:
        by: dict[str, list[Result]] = {}
        for r in sorted(labs, key=lambda r: r.when, reverse=True):
            by.setdefault(r.analyte, []).append(r)
        vitamin_d = by["vitamin_d"]
        p = self.profile
        status = "deficient" if vitamin_d[0].value < p.deficient_below else "insufficient"
        recent = timedelta(days=self.windows.electrolyte_recent_days)
        judged = self.content.analytes.judged
        missing = tuple(a for a in judged if not any(as_of - r.when <= recent for r in by.get(a, [])))
        return Decision(status, tuple(vitamin_d), missing)

    def cards(self, decision: Decision, context: CrampContext, patient: str, as_of: datetime) -> list[dict[str, Any]]:
        """The two cards, with filler where the catalogue has prose: what is measured is the values
        escaped into them, the table and the card structure."""
        latest, p = decision.vitamin_d[0], self.profile
        status_window = timedelta(days=self.windows.vitamin_d_status_days)
        rows = [_row(r, "old" if as_of - r.when > status_window else "") for r in decision.vitamin_d[:6]]
        shown, day = f"{latest.value:g} {latest.unit}", latest.when.date().isoformat()
        named = ", ".join(decision.missing[:-1]) + " and " + decision.missing[-1]
        low = {
            "summary": f"{shown} {day} {decision.status} {_PROSE[:60]}",
            "detail": f"{decision.status} {markdown(shown)} {day} {markdown(p.label)} {p.deficient_below:g} "
            f"{p.insufficient_below:g} {_PROSE[:200]}\n\n{_TABLE_HEAD}" + "\n".join(rows),
        }
        check = {
            "summary": f"{named} {_PROSE[:60]}",
            "detail": f"{markdown(named)} {markdown(', '.join(context.cramp_codes))} {markdown(named)} "
            f"{markdown(named.capitalize())} {_PROSE[:200]}\n\n{markdown(' and '.join(context.other_causes))} "
            f"{markdown(', '.join(context.drugs))}\n\n{_TABLE_HEAD}{rows[0]}\n\n{_PROSE}",
            "suggestions": [self._suggestion(test, patient) for test in ("bmp", "magnesium")],
            "selectionBehavior": "any",
        }
        return [self._card(low, f"vitd-{decision.status}"), self._card(check, "electrolytes-check")]

    def _card(self, text: dict[str, Any], kind: str) -> dict[str, Any]:
        spec = self.content.catalogue.cards[kind]
        return {
            "uuid": str(uuid.uuid4()),
            **text,
            "indicator": spec.indicator,
            "source": {"label": kind, "topic": {"system": "urn:kind", "code": kind}},
            "overrideReasons": [{"code": r.code} for r in self.content.catalogue.reasons(kind)],
            "links": [{"label": link, "url": "https://example.org", "type": "absolute"} for link in spec.links],
        }

    def _suggestion(self, test: str, patient: str) -> dict[str, Any]:
        request = {
            "resourceType": "ServiceRequest",
            "status": "draft",
            "intent": "order",
            "code": {"coding": [{"system": self.system, "code": test, "display": test}], "text": test},
            "subject": {"reference": f"Patient/{patient}"},
        }
        action = {"type": "create", "description": f"Order {test}", "resource": request}
        return {"label": f"Order {test}", "uuid": str(uuid.uuid4()), "isRecommended": True, "actions": [action]}

    def answer(self, body: dict[str, Any], as_of: datetime) -> dict[str, Any]:
        patient = body["context"]["patientId"]
        decision = self.decide(self.labs(body, patient), as_of)
        return {"cards": self.cards(decision, self.context(body, patient, as_of), patient, as_of)}


def _row(r: Result, note: str) -> str:
    shown = f"{r.value:g} {r.unit}"
    return f"| {markdown(r.name)} | {markdown(r.code)} | {markdown(shown)} | {r.when.date().isoformat()} | {note} |"


def _caller(asgi: Any, body: bytes, answer: list[bytes] | None = None) -> Callable[[], Awaitable[None]]:
    """One POST of `body` to the hook, straight into the ASGI app; the answer's body into `answer`."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/cds-services/vitamin-d-cramps",
        "raw_path": b"/cds-services/vitamin-d-cramps",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start" and message["status"] != 200:
            raise RuntimeError(f"the hook answered {message['status']}")
        if message["type"] == "http.response.body" and answer is not None:
            answer.append(message.get("body", b""))

    async def call() -> None:
        await asgi(dict(scope), receive, send)

    return call


async def measure(rounds: int, batch: int) -> dict[str, list[float]]:
    """CPU ms a call of each, in `rounds` interleaved batches (this machine's speed drifts)."""
    body = orjson.dumps(workloads("http://127.0.0.1:9/fhir")["a-typical"])
    with tempfile.TemporaryDirectory() as workdir:
        database = f"sqlite+aiosqlite:///{Path(workdir) / 'bench.sqlite'}"
        return await _interleaved(create_app(Settings(auth="off", database_url=database)), body, rounds, batch)


async def _interleaved(service: Any, body: bytes, rounds: int, batch: int) -> dict[str, list[float]]:
    async with LifespanManager(service) as running:
        answer: list[bytes] = []
        await _caller(running.app, body, answer)()
        baseline = make_app(b"".join(answer))  # a fixed response of the service's size
        lean, parsed, now = Sketch(load_content()), orjson.loads(body), datetime.now(UTC)

        async def sketch() -> None:
            lean.answer(parsed, now)

        async with LifespanManager(baseline) as base:
            calls = {"baseline": _caller(base.app, body), "sketch": sketch, "service": _caller(running.app, body)}
            timings: dict[str, list[float]] = {name: [] for name in calls}
            for round_ in range(rounds + 1):  # the first round warms up
                for name, call in calls.items():
                    start = time.process_time()
                    for _ in range(batch):
                        await call()
                    if round_:
                        timings[name].append((time.process_time() - start) / batch * 1000)
    return timings


def main() -> None:
    rounds, batch = int(os.environ.get("ROUNDS", "40")), int(os.environ.get("BATCH", "50"))
    timings = asyncio.run(measure(rounds, batch))
    base = timings["baseline"]
    for name, values in timings.items():
        print(f"{name:9} CPU ms a call: median {statistics.median(values):.3f}, least {min(values):.3f}")
    sketch = statistics.median(b / (b + s) for b, s in zip(base, timings["sketch"], strict=True))
    service = statistics.median(b / s for b, s in zip(base, timings["service"], strict=True))
    print(f"throughput as a share of the baseline's, median of {rounds} rounds:")
    print(f"  the sketch's clinical work added to the baseline's call: {sketch:.2f}")
    print(f"  the service: {service:.2f}")


if __name__ == "__main__":
    main()
