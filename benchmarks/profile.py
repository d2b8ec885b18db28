"""Where our request time goes: a cost ladder over HTTP, the engine alone, and py-spy by process role.

    python -m benchmarks.profile [--duration 5] [--connections 8]

1. The engine alone, in this process: `EmbeddedEngine.execute` (what a query worker runs) and the bare
   `pyoxigraph.Store.query` inside it, per request kind.
2. The ladder over HTTP with wrk at saturation: the granian hello world (HTTP + client), `GET /healthz`
   (+ Flask and the app's hooks), `POST /sparql` with `ASK {}` (+ protocol parsing, query checks, the executor's
   round trip to a query worker, the query log), then the real requests. At saturation on 2 cores, machine time
   per request = 2 cores ÷ throughput, so the differences between rungs are what each layer costs.
3. py-spy over the whole server tree while resource pages are served, grouped by process role (web request
   threads, query workers, other) with the top functions of each.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks import common
from benchmarks.common import RESULTS, Server, log
from benchmarks.loadgen import Request, run_wrk
from benchmarks.servers import ceiling_server, export_dataset, guian_kg_command
from benchmarks.spy import PY_SPY, record, roles
from benchmarks.workloads import Query, adhoc, flagship, load_facts, request_for, resource_pages
from service.config import load_settings
from service.data.snapshots import load_snapshot
from service.engines.base import QueryJob
from service.engines.embedded import EmbeddedEngine
from service.library.queries import load_library


def engine_alone(queries: dict[str, list[Query]], reps: int = 30) -> dict[str, dict]:
    """Mean ms of EmbeddedEngine.execute and of the bare Store.query + serialisation it wraps, per kind."""
    settings = load_settings()
    engine = EmbeddedEngine(load_snapshot(settings))
    out = {}
    for kind, items in queries.items():
        jobs = [QueryJob(q.text, "json" if q.form in ("select", "ask") else "nt") for q in items]
        times = []
        for i in range(max(reps, len(jobs))):
            job = jobs[i % len(jobs)]
            started = time.perf_counter()
            engine.execute(job)
            times.append(time.perf_counter() - started)
        out[kind] = {
            "execute_ms": round(statistics.mean(times) * 1000, 3),
            "execute_p50_ms": round(statistics.median(times) * 1000, 3),
        }
    return out


def ladder(server: Server, ceiling: Server, queries: dict[str, list[Query]], args) -> list[dict]:
    rungs = [
        ("HTTP only (granian hello world)", ceiling, [Request("GET", "/")]),
        ("GET /healthz (Flask + app hooks)", server, [Request("GET", "/healthz")]),
    ]
    for kind, items in queries.items():
        rungs.append((f"POST /sparql: {kind}", server, [request_for(q, "/sparql") for q in items]))
    out = []
    for name, target, requests in rungs:
        result = run_wrk(target.base, requests, mode="cycle", duration=args.duration, connections=args.connections)
        cpu_ms = (os.cpu_count() or 2) * 1000 / result.throughput if result.throughput else None
        out.append(
            {
                "rung": name,
                "throughput": result.throughput,
                "p50_ms": result.p50_ms,
                "p99_ms": result.p99_ms,
                "machine_ms_per_request": round(cpu_ms, 3) if cpu_ms else None,
                "errors": result.errors,
            }
        )
        log(f"{name:45} {result.throughput:9.1f} req/s  {cpu_ms or 0:7.3f} machine-ms/request")
    return out


def markdown(report: dict) -> str:
    lines = [
        f"# Where our request time goes — {report['date']}",
        "",
        "## Machine",
        "",
        common.machine_markdown(report["machine"]),
        "",
        "## The engine alone (one thread, in-process)",
        "",
        "| request kind | EmbeddedEngine.execute mean (ms) | p50 (ms) |",
        "|---|---:|---:|",
    ]
    for kind, row in report["engine"].items():
        lines.append(f"| {kind} | {row['execute_ms']:.3f} | {row['execute_p50_ms']:.3f} |")
    lines += [
        "",
        f"## The ladder over HTTP (wrk, {report['settings']['connections']} connections, saturation)",
        "",
        "| rung | req/s | p50 (ms) | p99 (ms) | machine-ms per request |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in report["ladder"]:
        lines.append(
            f"| {row['rung']} | {row['throughput']:.1f} | {row['p50_ms']:.2f} | {row['p99_ms']:.2f} | "
            f"{row['machine_ms_per_request']} |"
        )
    prof = report.get("pyspy")
    if prof:
        lines += ["", f"## py-spy by process role ({prof['samples']} samples, resource-page load)", ""]
        for role, group in prof["roles"].items():
            lines += [
                f"### {role}: {group['share']} % of samples",
                "",
                "| self (leaf) | % | inclusive (our code, Flask, werkzeug, json, logging) | % |",
                "|---|---:|---|---:|",
            ]
            for (a, pa), (b, pb) in zip(group["self"], group["inclusive"] + [("", "")] * 20, strict=False):
                lines.append(f"| `{a}` | {pa} | {'`' + b + '`' if b else ''} | {pb} |")
            lines.append("")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile", description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--max-load", type=float, default=1.5)
    args = parser.parse_args(argv)
    common.wait_for_quiet(args.max_load, log=log)
    folder = Path(tempfile.mkdtemp(prefix="guian-kg-profile-"))
    report: dict = {
        "date": dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "settings": vars(args),
        "machine": common.machine(),
    }
    try:
        library = load_library()
        nquads = export_dataset(folder)
        facts = load_facts(nquads)
        pages = resource_pages(facts)
        queries = {
            "ASK { ?s ?p ?o }": [Query("ask", "ASK { ?s ?p ?o }", "ask")],
            "flagship": [flagship(library)],
            "resource page CONSTRUCT": pages["construct"],
            "resource page DESCRIBE": pages["describe"],
            "ad-hoc queries": adhoc(facts, 50, seed=13),
        }
        report["engine"] = engine_alone(queries)
        log("engine alone: " + ", ".join(f"{k} {v['execute_ms']:.2f} ms" for k, v in report["engine"].items()))
        port = common.free_port()
        server = Server(
            "ours",
            [*guian_kg_command(), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
            port,
            "/readyz",
            log_path=folder / "ours.log",
        )
        ceiling = ceiling_server(folder, 2)
        with common.running([server, ceiling]):
            report["ladder"] = ladder(server, ceiling, queries, args)
            if PY_SPY.exists() and server.process is not None:
                raw = folder / "pyspy.txt"
                spy = record(server.process.pid, raw, 250, int(args.duration * 2))
                time.sleep(1.0)
                run_wrk(
                    server.base,
                    [request_for(q, "/sparql") for q in pages["construct"]],
                    mode="cycle",
                    duration=args.duration * 2 - 2,
                    connections=args.connections,
                )
                spy.wait(timeout=120)
                if raw.exists():
                    report["pyspy"] = roles(raw)
                    shutil.copy(raw, RESULTS / f"{dt.date.today().isoformat()}-profile-pyspy.txt")
        RESULTS.mkdir(parents=True, exist_ok=True)
        path = RESULTS / f"{dt.date.today().isoformat()}-profile.md"
        path.write_text(markdown(report), encoding="utf-8")
        common.dump_json(path.with_suffix(".json"), report)
        print(markdown(report))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
