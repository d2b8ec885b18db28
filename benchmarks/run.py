"""HTTP benchmark: guian-kg against Oxigraph server and rdflib-endpoint, same data, same requests, same machine.

    python -m benchmarks.run [--runs 5] [--duration 10] [--connections 8]
                             [--systems ours,oxigraph,rdflib-endpoint] [--quick] [--profile]

Steps: export our dataset (asserted + inferred, N-Quads) → load it into Oxigraph (union default graph) and
rdflib-endpoint (Dataset, default_union) → build the workloads → check that every system answers every
request alike (as sets); requests where they do not are reported and left out of the timing (a system that
disagrees on the flagship is not timed on it) → for each run: start every server fresh, measure the machine
ceiling, then per system the cold mix (each request once), the repeated flagship and the resource pages,
with wrk and N connections → stop the servers (always) → median of the runs, ratios, targets → a Markdown
table and JSON in benchmarks/results/.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import re
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks import common
from benchmarks.common import RESULTS, VENV_BIN, Server, log
from benchmarks.compare import Answer, agree, answer_of, send
from benchmarks.loadgen import Request, have_wrk, run_wrk
from benchmarks.servers import ceiling_server, export_dataset, guian_kg_command, prepare_oxigraph
from benchmarks.spy import PY_SPY, record, roles
from benchmarks.workloads import Query, as_get, cold_mix, flagship, load_facts, request_for, resource_pages
from service.library.queries import load_library

PEERS = ("oxigraph", "rdflib-endpoint")
ALL_SYSTEMS = ("ours", "ours-rest", *PEERS)
WORKLOADS = ("flagship", "cold", "cold-get", "construct", "describe")
COLD = ("cold", "cold-get")
WORKLOAD_TITLES = {
    "flagship": "(a) flagship co-handling query, repeated",
    "cold": "(b) cold mix by POST, each request once",
    "cold-get": "(b) cold mix by GET, each request once",
    "construct": "(c) resource pages by CONSTRUCT",
    "describe": "(c) resource pages by DESCRIBE",
}
# Targets of issue 17 on this machine: our throughput ÷ the peer's, per workload.
TARGETS = {
    ("flagship", "oxigraph"): 2.0,
    ("cold", "oxigraph"): 1.0,
    ("cold-get", "oxigraph"): 1.0,
    ("construct", "oxigraph"): 1.0,
    ("describe", "oxigraph"): 1.0,
    **{(workload, "rdflib-endpoint"): 50.0 for workload in WORKLOADS},
}


@dataclass
class System:
    """One server under test: how to start it, where its SPARQL endpoint is, whether it uses our REST paths."""

    name: str
    server: Server
    sparql_path: str
    rest: bool = False

    def request(self, query: Query) -> Request:
        return request_for(query, self.sparql_path, rest=self.rest)


@dataclass
class Plan:
    """The workloads (server-independent) and what the agreement check decided."""

    workloads: dict[str, list[Query]]
    timed: dict[str, dict[str, list[Query]]] = field(default_factory=dict)  # workload -> system -> queries
    disagreements: list[dict] = field(default_factory=list)
    excluded: dict[str, list[str]] = field(default_factory=dict)  # workload -> systems not timed


def make_systems(
    names: Sequence[str], folder: Path, nquads: Path, oxigraph_store: Path | None, workers: int
) -> list[System]:
    """Fresh (not yet started) servers on free loopback ports."""
    systems = []
    for name in names:
        port = common.free_port()
        logfile = folder / f"{name}.log"
        if name in ("ours", "ours-rest"):
            server = Server(
                name,
                [*guian_kg_command(), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)],
                port,
                "/readyz",
                log_path=logfile,
            )
            systems.append(System(name, server, "/sparql", rest=name == "ours-rest"))
        elif name == "oxigraph":
            assert oxigraph_store is not None
            server = Server(
                name,
                [
                    str(VENV_BIN / "oxigraph"),
                    "serve-read-only",
                    "--location",
                    str(oxigraph_store),
                    "--bind",
                    f"127.0.0.1:{port}",
                    "--union-default-graph",
                ],
                port,
                "/",
                log_path=logfile,
            )
            systems.append(System(name, server, "/query"))
        elif name == "rdflib-endpoint":
            server = Server(
                name,
                [str(VENV_BIN / "rdflib-endpoint"), "serve", str(nquads), "--host", "127.0.0.1", "--port", str(port)],
                port,
                "/",
                log_path=logfile,
            )
            systems.append(System(name, server, "/"))
        else:
            raise SystemExit(f"unknown system {name!r}; choose from {', '.join(ALL_SYSTEMS)}")
    return systems


# --- agreement -------------------------------------------------------------------------------------------


def check_agreement(plan: Plan, systems: Sequence[System], timeout: float) -> None:
    """Ask every system every request once, then decide what is timed.

    Per workload: a system that answers every request differently from the others (for the flagship: its one
    request) is reported and not timed on that workload; of the rest, a request on which the remaining systems
    still disagree is reported and left out of everyone's timing. A request that a system cannot answer within
    `timeout` seconds is a differing answer (leaving it out flatters that system); later variants of the same
    query are then not asked of it again.
    """
    gave_up: set[tuple[str, str]] = set()
    for workload, queries in plan.workloads.items():
        # ours' /id/ pages are resource pages of our own design, not a DESCRIBE: timed, not compared
        participants = [s for s in systems if not (s.rest and workload == "describe")]
        names = [s.name for s in participants]
        table: list[dict[str, Answer]] = []
        for query in queries:
            answers = {}
            for system in participants:
                if (system.name, query.label) in gave_up:
                    answers[system.name] = Answer(
                        "error", None, detail=f"not asked: an earlier {query.label} took over {timeout:g} s"
                    )
                    continue
                try:
                    status, ctype, body = send(system.server.base, system.request(query), timeout=timeout)
                    answers[system.name] = answer_of(status, ctype, body)
                except (TimeoutError, OSError) as exc:
                    answers[system.name] = Answer("error", None, detail=f"no answer within {timeout:g} s ({exc})")
                    gave_up.add((system.name, query.label))
                    log(f"{system.name}: no answer to {query.label} within {timeout:g} s; restarting it")
                    system.server.stop()  # it may still be computing (rdflib-endpoint runs one query at a time)
                    system.server.start()
                    system.server.wait_ready()
            table.append(answers)
        verdicts = [agree(q.label, a, reference=names) for q, a in zip(queries, table, strict=True)]
        bad = {n: sum(1 for v in verdicts if n in v.differing) for n in names}
        excluded = [n for n in names if queries and bad[n] == len(queries) and len(names) > 2]
        if workload == "flagship":
            excluded = [n for n in names if bad[n]]
        plan.excluded[workload] = excluded
        kept = [n for n in names if n not in excluded]
        plan.timed[workload] = {n: [] for n in kept}
        for query, answers, verdict in zip(queries, table, verdicts, strict=True):
            among_kept = agree(query.label, {n: answers[n] for n in kept}, reference=kept) if kept else verdict
            if kept and among_kept.unanimous:
                for name in kept:
                    plan.timed[workload][name].append(query)
            if not verdict.unanimous:
                plan.disagreements.append(
                    {
                        "workload": workload,
                        "label": query.label,
                        "query": query.text if len(query.text) < 1500 else query.text[:1500] + " …",
                        "agreeing": verdict.agreeing,
                        "differing": verdict.differing,
                        "timed_without_it": among_kept.unanimous and bool(kept),
                        "answers": {k: v.summary() for k, v in answers.items()},
                    }
                )
        differing = ", ".join(f"{n} differs on {b}" for n, b in bad.items() if b)
        log(
            f"agreement on {workload}: {len(queries)} requests, {differing or 'all agree'}"
            + (f"; not timed: {', '.join(excluded)}" if excluded else "")
        )
    for system in systems:
        if system.rest:
            pages = {q.rest: q for q in plan.workloads["describe"] if q.rest}
            first = next(iter(pages.values()), None)
            if first is not None and send(system.server.base, system.request(first))[0] == 200:
                plan.timed["describe"][system.name] = list(pages.values())


# --- measuring -------------------------------------------------------------------------------------------


def measure_run(
    systems: Sequence[System], plan: Plan, args: argparse.Namespace, run: int, ceiling: Server | None
) -> dict:
    """One run: every system × workload (systems in a rotated order, so none always goes first)."""
    out: dict = {"systems": {}, "ceiling": None, "startup_s": {}, "memory": {}}
    for system in systems:
        out["startup_s"][system.name] = system.server.startup_seconds
    if ceiling is not None:
        hello = Request(
            "POST",
            "/sparql",
            plan.workloads["flagship"][0].text.encode(),
            "application/sparql-query",
            "application/sparql-results+json",
        )
        out["ceiling"] = run_wrk(
            ceiling.base, [hello], mode="cycle", duration=args.duration, connections=args.connections
        ).as_dict()
        log(f"run {run}: machine ceiling {out['ceiling']['throughput']:.0f} req/s")
    order = list(systems[run % len(systems) :]) + list(systems[: run % len(systems)])
    for system in order:
        results = {}
        colds = COLD if run % 2 == 0 else COLD[::-1]  # cold first, on a fresh server; which one first alternates
        for workload in (*colds, *(w for w in WORKLOADS if w not in COLD)):
            queries = plan.timed.get(workload, {}).get(system.name) or []
            if not queries:
                continue
            drain(system)
            requests = [system.request(q) for q in queries]
            mode = "once" if workload in COLD else "cycle"
            duration = args.cold_cap if workload in COLD else args.duration
            try:
                result = run_wrk(
                    system.server.base,
                    requests,
                    mode=mode,
                    duration=duration,
                    connections=args.connections,
                    timeout=args.request_timeout,
                )
            except RuntimeError as exc:
                log(f"run {run}: {system.name} {workload} failed: {exc}")
                continue
            results[workload] = result.as_dict()
            log(
                f"run {run}: {system.name:16} {workload:8} {result.throughput:9.1f} req/s  "
                f"p50 {result.p50_ms:8.2f} ms  p99 {result.p99_ms:8.2f} ms  n={result.requests}"
                + (f"  ERRORS {result.errors}" if result.errors else "")
            )
        out["systems"][system.name] = results
        out["memory"][system.name] = common.memory_of(system.server.pids())
    return out


def drain(system: System, timeout: float = 300.0) -> None:
    """Wait until the server has worked off requests that wrk abandoned when its time was up.

    A server that answers one query at a time (rdflib-endpoint) would otherwise start the next workload behind
    a queue of the previous one's requests.
    """
    probe = Query("probe", "ASK { ?s ?p ?o }", "ask")
    with contextlib.suppress(OSError):
        send(system.server.base, request_for(probe, system.sparql_path), timeout=timeout)


def profile_ours(system: System, plan: Plan, args: argparse.Namespace, folder: Path) -> dict | None:
    """py-spy over our whole process tree while the flagship runs: where the time goes, by function."""
    if not PY_SPY.exists() or system.server.process is None:
        return None
    raw = folder / "profile.txt"
    queries = plan.timed["flagship"].get(system.name) or plan.workloads["flagship"]
    cold = plan.timed["cold"].get(system.name) or []
    requests = [system.request(q) for q in queries]
    spy = record(system.server.process.pid, raw, 200, int(args.duration) + 2)
    time.sleep(1.0)
    try:
        run_wrk(system.server.base, requests, mode="cycle", duration=args.duration / 2, connections=args.connections)
        if cold:
            run_wrk(
                system.server.base,
                [system.request(q) for q in cold],
                mode="once",
                duration=args.duration / 2,
                connections=args.connections,
            )
    finally:
        spy.wait(timeout=args.duration + 60)
    if not raw.exists():
        return None
    return roles(raw)


# --- report ----------------------------------------------------------------------------------------------


def summarise(runs: list[dict], names: Sequence[str]) -> dict:
    """Median over runs, per system and workload."""
    summary: dict = {}
    for workload in WORKLOADS:
        for name in names:
            values = [r["systems"].get(name, {}).get(workload) for r in runs]
            values = [v for v in values if v]
            if not values:
                continue
            summary.setdefault(workload, {})[name] = {
                "throughput": common.median([v["throughput"] for v in values]),
                "p50_ms": common.median([v["p50_ms"] for v in values]),
                "p99_ms": common.median([v["p99_ms"] for v in values]),
                "max_ms": common.median([v.get("max_ms", 0.0) for v in values]),
                "requests": common.median([v["requests"] for v in values]),
                "errors": sum(v["errors"] for v in values),
                "runs": len(values),
                "throughputs": [v["throughput"] for v in values],
            }
        # Our throughput ÷ each peer's in the same run (the machine is shared: ratios within a run are what count),
        # then the median of those ratios, with their range.
        for name, row in summary.get(workload, {}).items():
            ratios = []
            for r in runs:
                ours, theirs = (r["systems"].get(n, {}).get(workload) for n in ("ours", name))
                if ours and theirs and theirs["throughput"]:
                    ratios.append(ours["throughput"] / theirs["throughput"])
            if ratios and name != "ours":
                row["ratio"], row["ratios"] = common.median(ratios), ratios
    ceilings = [r["ceiling"] for r in runs if r.get("ceiling")]
    summary["ceiling"] = common.median([c["throughput"] for c in ceilings]) if ceilings else None
    # The tail of a server that does nothing: the floor of p99/p50 this machine and load generator allow.
    summary["ceiling_spread"] = common.median([c["p99_ms"] / c["p50_ms"] for c in ceilings]) if ceilings else None
    return summary


def targets(summary: dict) -> list[dict]:
    """Each target of issue 7: measured value, PASS/MISS and the margin."""
    rows = []
    for (workload, peer), wanted in TARGETS.items():
        ours = summary.get(workload, {}).get("ours")
        theirs = summary.get(workload, {}).get(peer)
        if not ours or not theirs or not theirs["throughput"]:
            rows.append({"target": f"{workload}: ours ≥ {wanted}× {peer}", "measured": None, "verdict": "NOT MEASURED"})
            continue
        ratio = theirs.get("ratio") or ours["throughput"] / theirs["throughput"]
        rows.append(
            {
                "target": f"{WORKLOAD_TITLES[workload][:3]} {workload}: throughput ≥ {wanted:g}× {peer}",
                "measured": f"{ratio:.2f}×",
                "verdict": "PASS" if ratio >= wanted else "MISS",
                "margin": f"{(ratio / wanted - 1) * 100:+.0f} %",
            }
        )
    floor = summary.get("ceiling_spread")
    for workload in WORKLOADS:
        ours = summary.get(workload, {}).get("ours")
        if not ours or not ours["p50_ms"] or not floor:
            continue
        spread = ours["p99_ms"] / ours["p50_ms"]
        rows.append(
            {
                "target": f"{WORKLOAD_TITLES[workload][:3]} {workload}: ours p99/p50 ≤ the hello world's (8 clients)",
                "measured": f"{spread:.2f} (hello world: {floor:.2f})",
                "verdict": "PASS" if spread <= floor else "MISS",
                "margin": f"{(floor / spread - 1) * 100:+.0f} %",
            }
        )
    return rows


def markdown(report: dict) -> str:
    summary, args = report["summary"], report["settings"]
    lines = [
        f"# HTTP benchmark — {report['date']}",
        "",
        f"`python -m benchmarks.run {report['argv']}`",
        "",
        "## Machine",
        "",
        common.machine_markdown(report["machine"]),
        "",
        f"Runs: {args['runs']} (median shown); wrk with {args['connections']} connections; repeated workloads "
        f"{args['duration']} s each; the cold mix sends each request once, on servers started fresh for the run.",
        "",
        f"**Machine ceiling** (granian WSGI hello world, {args['workers']} workers, same wrk, same request): "
        + (
            f"{summary['ceiling']:.0f} req/s, p99/p50 {summary['ceiling_spread']:.2f}"
            if summary.get("ceiling")
            else "not measured"
        ),
        "",
        "## Results",
        "",
        "| workload | system | throughput (req/s) | p50 (ms) | p99 (ms) | max (ms) | p99/p50 "
        "| ours ÷ system (runs) | requests | errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for workload in WORKLOADS:
        rows = summary.get(workload, {})
        for name, row in rows.items():
            ratio = "–"
            if row.get("ratio"):
                low, high = min(row["ratios"]), max(row["ratios"])
                ratio = f"{row['ratio']:.2f}× ({low:.2f}–{high:.2f})" if len(row["ratios"]) > 1 else f"{low:.2f}×"
            spread = f"{row['p99_ms'] / row['p50_ms']:.1f}" if row["p50_ms"] else "–"
            lines.append(
                f"| {WORKLOAD_TITLES[workload]} | {name} | {row['throughput']:.1f} | {row['p50_ms']:.2f} | "
                f"{row['p99_ms']:.2f} | {row.get('max_ms', 0):.1f} | {spread} | {ratio} | {row['requests']:.0f} | "
                f"{row['errors']} |"
            )
        for name in report["plan"]["excluded"].get(workload, []):
            lines.append(f"| {WORKLOAD_TITLES[workload]} | {name} | not timed: answers differ | | | | | | | |")
    lines += [
        "",
        "`ours` is `guian-kg serve --workers "
        f"{args['workers']}` over POST /sparql (the same bytes the peers get); `ours-rest` is the same server "
        "answering the named queries through `GET /api/queries/<name>?…` (and the flagship likewise).",
        "",
        "## Targets",
        "",
        "| target | measured | verdict | margin |",
        "|---|---|---|---|",
    ]
    for row in report["targets"]:
        lines.append(f"| {row['target']} | {row['measured'] or '–'} | {row['verdict']} | {row.get('margin', '')} |")
    lines += [
        "",
        "## Start-up and memory (last run)",
        "",
        "| system | ready after (s) | RSS sum | PSS sum | processes |",
        "|---|---:|---:|---:|---:|",
    ]
    last = report["runs"][-1] if report["runs"] else {}
    for name, seconds in last.get("startup_s", {}).items():
        memory = last.get("memory", {}).get(name, {})
        lines.append(
            f"| {name} | {seconds or 0:.2f} | {common.fmt_bytes(memory.get('rss_sum'))} | "
            f"{common.fmt_bytes(memory.get('pss_sum'))} | {memory.get('processes', '')} |"
        )
    plan = report["plan"]
    lines += ["", "## Agreement of answers (checked before timing)", ""]
    for workload, count in plan["sizes"].items():
        lines.append(
            f"- {WORKLOAD_TITLES[workload]}: {count} distinct requests; "
            f"{sum(1 for d in plan['disagreements'] if d['workload'] == workload)} with differing answers"
        )
    if plan["disagreements"]:
        lines += [
            "",
            "Differing answers (grouped; the JSON has every query text). A request is timed for the "
            "systems that agree on it only when every timed system does:",
            "",
        ]
        groups: dict[tuple, list] = {}
        for item in plan["disagreements"]:
            for system, why in item["differing"].items():
                key = (item["workload"], item["label"], system, re.sub(r"\d+", "#", why)[:160])
                groups.setdefault(key, []).append((why, item["timed_without_it"]))
        for (workload, label, system, _), items in groups.items():
            timed = sum(1 for _, t in items if t)
            lines.append(
                f"- {workload} `{label}` × {len(items)}: **{system}** — {items[0][0][:300]}"
                + (f" (still timed for the others: {timed})" if timed else " (left out of the timing)")
            )
    if report.get("profile"):
        prof = report["profile"]
        lines += ["", f"## Where our time goes (py-spy over our process tree, {prof['samples']} samples)", ""]
        for role, group in prof["roles"].items():
            lines += [
                f"**{role}**: {group['share']} % of samples — top leaves: "
                + ", ".join(f"`{name}` {share} %" for name, share in group["self"][:6]),
                "",
            ]
    lines += [
        "",
        "## How to read this",
        "",
        "Throughput is completed requests per second (all connections together); p50/p99 are wrk's latency "
        "percentiles over every request of the run; each figure is the median over the runs. `ours ÷ system` "
        "> 1 means we are faster. The machine ceiling is what the same load generator gets from a server that "
        "does nothing: no system can exceed it, and a result close to it means the client or HTTP stack, not "
        "the query engine, is the limit.",
        "",
    ]
    return "\n".join(lines)


# --- main ------------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of each repeated workload")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--systems", default="ours,ours-rest,oxigraph,rdflib-endpoint")
    parser.add_argument("--workers", type=int, default=2, help="web workers of ours and of the ceiling server")
    parser.add_argument("--per-query", type=int, default=20, help="parameter variants per named query (cold mix)")
    parser.add_argument("--adhoc", type=int, default=150, help="ad-hoc queries in the cold mix")
    parser.add_argument("--cold-cap", type=float, default=300.0, help="longest a cold mix may run (s)")
    parser.add_argument("--request-timeout", type=float, default=60.0, help="wrk's timeout of one request (s)")
    parser.add_argument(
        "--check-timeout",
        type=float,
        default=30.0,
        help="longest a system may take over one request while answers are compared (s)",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 run, 3 s, small mixes")
    parser.add_argument("--profile", action="store_true", help="also profile ours with py-spy")
    parser.add_argument("--no-ceiling", action="store_true")
    parser.add_argument("--max-load", type=float, default=1.5, help="wait until the 1-min load is below this")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, stores)")
    parser.add_argument(
        "--report-from", type=Path, help="write the report of a stored run's JSON again, measure nothing"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.duration, args.per_query, args.adhoc = 1, 3.0, 3, 10
        args.check_timeout = min(args.check_timeout, 10.0)
        args.cold_cap = min(args.cold_cap, 60.0)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.report_from is not None:
        report = json.loads(args.report_from.read_text(encoding="utf-8"))
        names = [n for n in ALL_SYSTEMS if any(n in r["systems"] for r in report["runs"])]
        report["summary"] = summarise(report["runs"], names)
        report["targets"] = targets(report["summary"])
        common.write_report(args.report_from.with_suffix(".md"), markdown(report), report)
        return 0
    # a SIGTERM (timeout, CI) unwinds like Ctrl-C, so the servers are stopped
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if not have_wrk():
        raise SystemExit("wrk is missing: apt-get install -y wrk")
    names = [n.strip() for n in args.systems.split(",") if n.strip()]
    folder = Path(tempfile.mkdtemp(prefix="guian-kg-bench-"))
    log(f"work folder {folder}")
    report: dict = {
        "date": dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "argv": " ".join(sys.argv[1:]),
        "settings": vars(args),
        "machine": common.machine(),
        "runs": [],
    }
    try:
        nquads = export_dataset(folder)
        quads = nquads.read_bytes().count(b"\n")
        log(f"exported {quads} quads")
        report["quads"] = quads
        store, load_s = prepare_oxigraph(folder, nquads) if "oxigraph" in names else (None, None)
        report["oxigraph_load_s"] = load_s
        library = load_library()
        facts = load_facts(nquads)
        plan = Plan(
            {
                "flagship": [flagship(library)],
                "cold": (cold := cold_mix(library, facts, per_query=args.per_query, adhoc_count=args.adhoc)),
                "cold-get": as_get(cold),
                **resource_pages(facts, limit=20 if args.quick else None),
            }
        )
        log("workloads: " + ", ".join(f"{k} {len(v)}" for k, v in plan.workloads.items()))

        # 1. agreement, on servers of their own (their caches must not warm the timed runs)
        systems = make_systems(names, folder, nquads, store, args.workers)
        with common.running([s.server for s in systems]):
            if "ours-rest" in names:
                probe = next(s for s in systems if s.name == "ours-rest")
                status, _, _ = send(probe.server.base, probe.request(plan.workloads["flagship"][0]))
                if status != 200:
                    log(f"ours-rest: GET /api/queries answers {status}: left out")
                    names.remove("ours-rest")
                    systems = [s for s in systems if s.name != "ours-rest"]
            check_agreement(plan, systems, args.check_timeout)

        # 2. the timed runs, each on fresh servers
        for run in range(args.runs):
            load = common.wait_for_quiet(args.max_load, log=log)
            log(f"run {run + 1}/{args.runs} (load {load:.2f})")
            systems = make_systems(names, folder, nquads, store, args.workers)
            servers = [s.server for s in systems]
            ceiling = None if args.no_ceiling else ceiling_server(folder, args.workers)
            with common.running(servers + ([ceiling] if ceiling else [])):
                result = measure_run(systems, plan, args, run, ceiling)
                if args.profile and run == args.runs - 1 and "ours" in names:
                    ours = next(s for s in systems if s.name == "ours")
                    report["profile"] = profile_ours(ours, plan, args, folder)
            report["runs"].append(result)
        report["summary"] = summarise(report["runs"], names)
        report["targets"] = targets(report["summary"])
        report["plan"] = {
            "sizes": {k: len(v) for k, v in plan.workloads.items()},
            "disagreements": plan.disagreements,
            "excluded": plan.excluded,
            "queries": {
                k: [{"label": q.label, "text": q.text, "rest": q.rest} for q in v] for k, v in plan.workloads.items()
            },
        }
        stamp = dt.date.today().isoformat() + ("-quick" if args.quick else "")
        common.write_report(RESULTS / f"{stamp}-http.md", markdown(report), report)
    finally:
        if not args.keep:
            with contextlib.suppress(OSError):
                shutil.rmtree(folder)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
