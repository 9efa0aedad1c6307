"""`make bench`: the service against a baseline on the same stack, driven by wrk.

For each workload and concurrency the two servers take turns (service, baseline, service, baseline)
for a fixed duration each; the table shows the mean of the turns, with the CPU time each server's
process spent per call (utime + stime of /proc/<pid>/stat, all its threads, over the turn, divided by
the requests wrk completed). With two cores or more the service and the baseline run on core 0, the
FHIR stub and wrk on core 1. See bench/README.md.
"""

from __future__ import annotations

import json
import os
import platform
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
CONCURRENCY = (1, 8, 32)
CONNECTIONS = {"d-fetched": (1, 8)}  # the others: CONCURRENCY
FETCHED = ("c-no-prefetch", "d-fetched")  # read from the FHIR stub: no baseline ratio
DURATION_S = int(os.environ.get("BENCH_DURATION_S", "6"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))  # paired rounds: the targets need at least three
# A comma-separated subset of the workloads, for a quick look; the targets need them all.
ONLY = [w for w in os.environ.get("BENCH_WORKLOADS", "").split(",") if w]
STUB_DELAY_S = 0.05
SERVICE_PATH = "/cds-services/vitamin-d-cramps"
PINNED = (os.cpu_count() or 1) >= 2
SERVER_CORES, LOAD_CORES = {0}, {1}  # the service and the baseline; the FHIR stub and wrk


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def server(
    args: list[str], env: dict[str, str], health: str, log: Path, cores: set[int]
) -> Iterator[subprocess.Popen[bytes]]:
    """The Python process of `args` (uvicorn in process: its pid is the server's), pinned to `cores`."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, *args],
            cwd=ROOT,
            env=os.environ | env,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=pin(cores),
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(health, timeout=1).status_code < 500:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{args} did not start; see {log}")
            time.sleep(0.1)
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def pin(cores: set[int]) -> Callable[[], None] | None:
    """Set in the child before exec, so that every thread it starts inherits the affinity."""
    return (lambda: os.sched_setaffinity(0, cores)) if PINNED else None


def cpu_s(pid: int) -> float:
    """User and system CPU time of the process, all its threads, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # fields 14 and 15 of proc(5)


def uvicorn(module: str, port: int) -> list[str]:
    return [
        "-m",
        "uvicorn",
        module,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
    ]


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def wrk(url: str, body: Path, connections: int) -> dict[str, float]:
    out = subprocess.run(
        [
            "wrk",
            f"-t{min(connections, 2)}",
            f"-c{connections}",
            f"-d{DURATION_S}s",
            "--timeout",
            "10s",
            "--latency",
            "-s",
            str(ROOT / "bench" / "post.lua"),
            url,
        ],
        env=os.environ | {"BENCH_BODY": str(body)},
        capture_output=True,
        text=True,
        check=True,
        preexec_fn=pin(LOAD_CORES),
    ).stdout
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    latency = {p: float(v) * _UNITS[u] for p, v, u in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)}
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])  # type: ignore[index]
    requests = int(re.search(r"^\s*(\d+) requests in ", out, re.M)[1])  # type: ignore[index]
    return {
        "rps": rps,
        "requests": requests,
        "p50_ms": latency["50"],
        "p99_ms": latency["99"],
        "socket_errors": errors,
        "non_2xx": int(non_2xx[1]) if non_2xx else 0,  # under overload: 412 once the FHIR deadline passes
    }


def run(proc: subprocess.Popen[bytes], url: str, body: Path, connections: int, stub: int) -> dict[str, float]:
    """One wrk turn against the server `proc`, with the CPU it spent per call and the share of a
    core the FHIR stub (process `stub`) used meanwhile."""
    cpu, stub_cpu, start = cpu_s(proc.pid), cpu_s(stub), time.monotonic()
    result = wrk(url, body, connections)
    wall = time.monotonic() - start
    result["cpu_ms_per_call"] = (cpu_s(proc.pid) - cpu) * 1000 / max(result["requests"], 1)
    result["stub_busy"] = (cpu_s(stub) - stub_cpu) / wall
    return result


def peak_rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status)[1]) / 1024  # type: ignore[index]


def paired(ours: list[dict[str, float]], theirs: list[dict[str, float]], key: str) -> list[float]:
    """Our figure over theirs, round by round."""
    return [round(o[key] / t[key], 2) for o, t in zip(ours, theirs, strict=True)]


def mean(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: round(sum(r[k] for r in runs) / len(runs), 2) for k in runs[0]}


def machine() -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "",
    )
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from bench.workloads import workloads

    work = Path(tempfile.mkdtemp(prefix="cds-bench-"))
    stub_port, service_port, baseline_port, orjson_port = free_port(), free_port(), free_port(), free_port()
    stub_url = f"http://127.0.0.1:{stub_port}/fhir"
    fast_stub_url = f"http://127.0.0.1:{stub_port}/nodelay/fhir"
    service_env = {
        "CDS_AUTH": "off",
        "CDS_FHIR_ALLOW_INSECURE": "true",
        "CDS_DATABASE_URL": f"sqlite+aiosqlite:///{work / 'bench.sqlite'}",
        "CDS_LOG_FORMAT": "json",
    }
    requests = workloads(stub_url, fast_stub_url)
    results: list[dict[str, Any]] = []
    if PINNED:
        print(f"pinned: the service and the baseline to core 0; the FHIR stub and wrk to core 1 (of {os.cpu_count()})")
    else:
        print("one core: nothing pinned; the FHIR stub and wrk share it with the servers")
    with (
        server(
            uvicorn("bench.fhir_stub:app", stub_port),
            {"BENCH_STUB_DELAY_S": str(STUB_DELAY_S)},
            f"{stub_url}/Patient/x",
            work / "stub.log",
            LOAD_CORES,
        ) as stub,
        server(
            ["-m", "cds_service", "serve", "--port", str(service_port), "--no-access-log"],
            service_env,
            f"http://127.0.0.1:{service_port}/healthz",
            work / "service.log",
            SERVER_CORES,
        ) as service,
    ):
        service_url = f"http://127.0.0.1:{service_port}{SERVICE_PATH}"
        bodies = {name: work / f"{name}.json" for name in requests}
        for name, request in requests.items():
            bodies[name].write_text(json.dumps(request))
        for name in requests:
            if ONLY and name not in ONLY:
                continue
            body = bodies[name]
            answer = httpx.post(
                service_url, content=body.read_bytes(), headers={"Content-Type": "application/json"}, timeout=10
            )
            answer.raise_for_status()
            response_file = work / f"{name}.response.json"
            response_file.write_bytes(answer.content)
            baseline_env = {"BENCH_BASELINE_RESPONSE": str(response_file)}
            fetched = name in FETCHED
            with (
                server(
                    [*uvicorn("bench.baseline:from_environment", baseline_port), "--factory"],
                    baseline_env,
                    f"http://127.0.0.1:{baseline_port}/docs",
                    work / "baseline.log",
                    SERVER_CORES,
                ) as baseline,
                server(
                    [*uvicorn("bench.baseline:from_environment", orjson_port), "--factory"],
                    baseline_env | {"BENCH_BASELINE_PARSER": "orjson"},
                    f"http://127.0.0.1:{orjson_port}/docs",
                    work / "baseline-orjson.log",
                    SERVER_CORES,
                ) as orjson_floor,
            ):
                baseline_url = f"http://127.0.0.1:{baseline_port}{SERVICE_PATH}"
                orjson_url = f"http://127.0.0.1:{orjson_port}{SERVICE_PATH}"
                for connections in CONNECTIONS.get(name, CONCURRENCY):
                    ours, theirs, lean, typical = [], [], [], []
                    for _ in range(ROUNDS):
                        ours.append(run(service, service_url, body, connections, stub.pid))
                        if name == "d-fetched":  # (a) in the same minutes: the machine's speed drifts
                            typical.append(run(service, service_url, bodies["a-typical"], connections, stub.pid))
                        theirs.append(run(baseline, baseline_url, body, connections, stub.pid))
                        del theirs[-1]["stub_busy"]
                        if not fetched:  # the floors mean nothing where the service reads from the stub
                            lean.append(run(orjson_floor, orjson_url, body, connections, stub.pid))
                            del lean[-1]["stub_busy"]
                    row: dict[str, Any] = {
                        "workload": name,
                        "request_kb": round(body.stat().st_size / 1024, 1),
                        "cards": len(answer.json()["cards"]),
                        "connections": connections,
                        "service": mean(ours),
                        "baseline": mean(theirs),
                    }
                    if typical:
                        row["a_typical_alongside"] = mean(typical)
                        # (d)'s CPU over (a)'s of the same round, round by round: the spread
                        row["d_to_a_rounds"] = paired(ours, typical, "cpu_ms_per_call")
                    row["ratio"] = None if fetched else round(row["service"]["rps"] / row["baseline"]["rps"], 2)
                    if not fetched:
                        row["floor_orjson"] = mean(lean)
                        row["ratio_orjson"] = round(row["service"]["rps"] / row["floor_orjson"]["rps"], 2)
                        # the ratio round by round (each round's turns run in the same minutes): the spread
                        row["ratio_rounds"] = paired(ours, theirs, "rps")
                        row["ratio_orjson_rounds"] = paired(ours, lean, "rps")
                    results.append(row)
                    print_row(row)
        rss = peak_rss_mb(service.pid)
        fetch_floor = None
        if not ONLY or "d-fetched" in ONLY:
            from bench.fetch_floor import report as fetch_floor_report

            if PINNED:  # in this process, on the servers' core, the stub still on its own
                os.sched_setaffinity(0, SERVER_CORES)
            fetch_floor = fetch_floor_report(fast_stub_url)
    from bench.stages import report as stage_report

    stages = stage_report()  # in process, once the servers are gone, on the servers' core
    report: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "duration_s": DURATION_S,
        "rounds": ROUNDS,
        "pinned": {"service_and_baseline": sorted(SERVER_CORES), "stub_and_wrk": sorted(LOAD_CORES)}
        if PINNED
        else None,
        "service_peak_rss_mb": round(rss, 1),
        "results": results,
        "stages_a_typical_cpu_ms": stages,
        "fetch_d_cpu_ms": fetch_floor,
    }
    if any(r["workload"] == "d-fetched" for r in results):
        report["cpu_per_call_d_to_a"] = cpu_ratios(results)
    if not ONLY:
        report["targets"] = targets(results, rss)
    out = ROOT / "bench" / "results" / f"{report['when'].replace(':', '')}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    if "cpu_per_call_d_to_a" in report:
        print("\nservice CPU per call, (d) fetched against (a) prefetched in turns between (d)'s:")
        for row in (r for r in results if r["workload"] == "d-fetched"):
            d, a = row["service"]["cpu_ms_per_call"], row["a_typical_alongside"]["cpu_ms_per_call"]
            ratio = report["cpu_per_call_d_to_a"][str(row["connections"])]
            print(f"{row['connections']:>5} connections: {ratio:.2f} x ({d} against {a} ms)")
    print("\nthe ratio to each floor, round by round (the spread):")
    for row in (r for r in results if r.get("ratio_rounds")):
        spread = ", ".join(
            f"{a:.2f}/{b:.2f}" for a, b in zip(row["ratio_rounds"], row["ratio_orjson_rounds"], strict=True)
        )
        print(f"{row['workload']} at {row['connections']} connections, json/orjson floor: {spread}")
    for row in (r for r in results if r.get("d_to_a_rounds")):
        print(f"(d)/(a) CPU at {row['connections']} connections: {', '.join(map(str, row['d_to_a_rounds']))}")
    for row in results:
        if row["workload"] in FETCHED:
            busy = row["service"]["stub_busy"]
            print(f"FHIR stub busy during {row['workload']} at {row['connections']} connections: {busy:.0%} of a core")
    print(f"\nservice peak RSS: {rss:.1f} MB")
    for target, (ok, figure) in report.get("targets", {}).items():
        print(f"{'met ' if ok else 'MISS'}  {target}: {figure}")
    print(f"\nwritten to {out.relative_to(ROOT)}")


def cpu_ratios(results: list[dict[str, Any]]) -> dict[str, float]:
    """The service's CPU per call of (d) over (a)'s, by connections (JSON keys: strings), (a) from
    the turns run between (d)'s, so that both met the machine at the same speed."""
    return {
        str(r["connections"]): round(r["service"]["cpu_ms_per_call"] / r["a_typical_alongside"]["cpu_ms_per_call"], 2)
        for r in results
        if r["workload"] == "d-fetched"
    }


def print_row(row: dict[str, Any]) -> None:
    s, b = row["service"], row["baseline"]
    if row["connections"] == CONCURRENCY[0]:
        print(f"\n{row['workload']} ({row['request_kb']} KB request, {row['cards']} cards)")
        heads = ["service req/s", "baseline req/s", "ratio", "orjson floor", "ratio to it"]
        heads += ["svc p50 ms", "svc p99 ms", "base p50 ms", "base p99 ms", "svc CPU ms/call", "base CPU ms/call"]
        print(f"{'conn':>5} " + " ".join(f"{h:>16}" for h in heads))
    ratio = "-" if row["ratio"] is None else f"{row['ratio']:.2f}"
    lean = row.get("floor_orjson")
    cells = [f"{s['rps']:.0f}", f"{b['rps']:.0f}", ratio]
    cells += [f"{lean['rps']:.0f}", f"{row['ratio_orjson']:.2f}"] if lean else ["-", "-"]
    cells += [f"{x[p]:.2f}" for x in (s, b) for p in ("p50_ms", "p99_ms")]
    cells += [f"{x['cpu_ms_per_call']:.2f}" for x in (s, b)]
    print(f"{row['connections']:>5} " + " ".join(f"{c:>16}" for c in cells))


def targets(results: list[dict[str, Any]], rss: float) -> dict[str, tuple[bool, str]]:
    def at(workload: str, connections: int) -> dict[str, Any]:
        return next(r for r in results if r["workload"] == workload and r["connections"] == connections)

    a8, b8, c1, d8 = at("a-typical", 8), at("b-heavy", 8), at("c-no-prefetch", 1), at("d-fetched", 8)
    limit_c = 1.3 * STUB_DELAY_S * 1000
    cpu_a8, cpu_d8 = d8["a_typical_alongside"]["cpu_ms_per_call"], d8["service"]["cpu_ms_per_call"]
    return {
        "(a) throughput >= 60% of baseline at 8 connections": (
            a8["ratio"] >= 0.6 and min(a8["ratio_rounds"]) >= 0.6,
            f"{a8['ratio']:.0%} (rounds {', '.join(f'{r:.0%}' for r in a8['ratio_rounds'])}; "
            f"{a8['ratio_orjson']:.0%} of the orjson floor)",
        ),
        "(a) p99 < 20 ms at 8 connections": (a8["service"]["p99_ms"] < 20, f"{a8['service']['p99_ms']} ms"),
        "(b) throughput >= 40% of baseline at 8 connections": (b8["ratio"] >= 0.4, f"{b8['ratio']:.0%}"),
        f"(c) p50 < {limit_c:.0f} ms (1.3 x the stub's {STUB_DELAY_S * 1000:.0f} ms)": (
            c1["service"]["p50_ms"] < limit_c,
            f"{c1['service']['p50_ms']} ms",
        ),
        "(d) CPU per fetched call <= 2.0 x (a)'s at 8 connections": (
            cpu_d8 <= 2.0 * cpu_a8,
            f"{cpu_d8 / cpu_a8:.2f} x ({cpu_d8} against {cpu_a8} ms; "
            f"rounds {', '.join(map(str, d8['d_to_a_rounds']))})",
        ),
        "peak RSS < 200 MB": (rss < 200, f"{rss:.1f} MB"),
    }


if __name__ == "__main__":
    main()
