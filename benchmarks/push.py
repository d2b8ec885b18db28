"""`guian-kg push` at scale and what the remote engine adds per query (issue 18, "operations at scale").

    python -m benchmarks.push [--size 1m] [--runs 3] [--targets oxigraph-update,oxigraph-gsp,virtuoso]
                              [--overhead-runs 3] [--connections 4] [--skip-push] [--skip-overhead]

1. Push: the real data plus generated organisations (benchmarks/orggen.py) up to `--size` asserted triples, as
   `--data` files (the ontology as N-Quads in its own graph, graph_data's TriG, the generated TriG), reasoned once
   into a cache; then, for each run and each target in a rotated order, a fresh store and one `guian-kg push
   --data … --endpoint …` as a user runs it: Oxigraph server over SPARQL Update (/update) and over the Graph Store
   Protocol (/store), and Debian's Virtuoso 7.2 over SPARQL Update (/sparql, after GRANT SPARQL_UPDATE). Timed
   from the outside (the whole command: reading the snapshot included), the peak RSS of the push process, and
   the store's count per graph checked against the snapshot after each push.
2. Resume: once per target, a fresh store, a push killed (SIGKILL) when it reports half the triples sent, then
   `guian-kg push --resume`: its time next to the full push's median times the share it had left to send.
3. Per-query overhead: Oxigraph server (`--union-default-graph`) loaded with the shipped data by `guian-kg push`,
   and `guian-kg serve --engine remote --remote-query …/query --result-cache-mb 0` over that same server. The cold
   mix (every named query with up to `--per-query` parameter assignments + `--adhoc` ad-hoc queries, each text
   distinct) goes to both, POST, each request once: one connection (sequential latency) and `--connections`
   connections (throughput), systems in a rotated order, our server fresh for each run. Reported per run and as
   medians: ours ÷ direct, and the milliseconds we add per query.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Sequence
from pathlib import Path

import pyoxigraph as ox

from benchmarks import common
from benchmarks.common import REPO, RESULTS, VENV_BIN, Server, log
from benchmarks.loadgen import run_wrk
from benchmarks.orggen import generate
from benchmarks.servers import (
    grant_sparql_update,
    guian_kg_command,
    virtuoso_commands,
    virtuoso_version,
    write_virtuoso_ini,
)
from benchmarks.workloads import cold_mix, load_facts, request_for
from service import names
from service.library.queries import load_library

TARGETS = ("oxigraph-update", "oxigraph-gsp", "virtuoso")
COUNT = (
    f'SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH ?g {{ ?s ?p ?o }} FILTER(STRSTARTS(STR(?g), "{names.DEFAULT_BASE}")) }}'
)
PREPARE = """
import json, sys, time
from service.config import load_settings
from service.data.snapshots import load_snapshot
started = time.perf_counter()
# as push reads it: the N-Quads only (the embedded engine would also build its on-disk store)
settings = load_settings({"data": sys.argv[1], "cache_dir": sys.argv[2], "engine": "rdflib"}, environ={})
snapshot = load_snapshot(settings)
print(json.dumps({"seconds": time.perf_counter() - started, "nquads": str(snapshot.nquads)}))
"""
SUMMARY = re.compile(
    r"pushed (\d+) triples in (\d+) graphs .*: (\d+) batches \((\d+) triples\) sent, (\d+) already there, ([\d.]+) s"
)


# --- the data ---------------------------------------------------------------------------------------------------


def prepare_data(folder: Path, target: int) -> tuple[Path, dict]:
    """`--data` files: the ontology in its graph (N-Quads), graph_data's TriG, generated organisations up to
    `target` asserted triples."""
    data = folder / "data"
    data.mkdir()
    ontology = [
        ox.Quad(t.subject, t.predicate, t.object, ox.NamedNode(names.ONTOLOGY_GRAPH))
        for t in ox.parse(path=REPO / "ontology" / "guian-kg.ttl", format=ox.RdfFormat.TURTLE)
    ]
    (data / "ontology.nq").write_bytes(ox.serialize(ontology, format=ox.RdfFormat.N_QUADS))
    real = len(ontology)
    for path in sorted((REPO / "graph_data").glob("*.trig")):
        shutil.copyfile(path, data / path.name)
        real += sum(1 for _ in ox.parse(path=path, format=ox.RdfFormat.TRIG))
    counts = generate(
        max(target - real, 0), data / "zz-generated.trig", REPO / "graph_data" / "source" / "000_6a03369a891ee188.txt"
    )
    counts.update(real_triples=real, asserted_triples=real + counts["triples"])
    return data, counts


def build_snapshot(data: Path, cache: Path) -> dict:
    """Reason once (a child process: the reasoner's memory is its own); the snapshot's N-Quads and quad count."""
    done = subprocess.run(
        [sys.executable, "-c", PREPARE, str(data), str(cache)], cwd=REPO, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"reasoning failed: {done.stderr[-3000:]}")
    result = json.loads(done.stdout.splitlines()[-1])
    nquads = Path(result["nquads"])
    with open(nquads, "rb") as lines:
        result["quads"] = sum(1 for line in lines if line.strip())
    result["nquads"] = f"<cache>/{nquads.parent.name}/{nquads.name}"  # no machine path in the results
    return result


# --- the stores -------------------------------------------------------------------------------------------------


def oxigraph_store(folder: Path, union: bool = False) -> Server:
    port = common.free_port()
    location = Path(tempfile.mkdtemp(prefix="oxigraph-", dir=folder))
    argv = [str(VENV_BIN / "oxigraph"), "serve", "--location", str(location), "--bind", f"127.0.0.1:{port}"]
    return Server(
        "oxigraph",
        [*argv, "--union-default-graph"] if union else argv,
        port,
        "/query?query=ASK%7B%7D",
        log_path=folder / "oxigraph.log",
    )


class Virtuoso(Server):
    """A fresh Virtuoso in its own folder; `start_store` also lets its SPARQL user update."""

    sql_port: int = 0


def virtuoso_store(folder: Path, buffers: int) -> Virtuoso:
    binary, _ = virtuoso_commands()
    assert binary is not None
    home = Path(tempfile.mkdtemp(prefix="virtuoso-", dir=folder))
    sql_port, http_port = common.free_port(), common.free_port()
    ini = write_virtuoso_ini(home, sql_port, http_port, buffers=buffers)
    store = Virtuoso(
        "virtuoso",
        [binary, "+configfile", str(ini), "+foreground"],
        http_port,
        "/sparql?query=ASK%7B%7D",
        cwd=home,
        log_path=home / "stdout.log",
    )
    store.sql_port = sql_port
    return store


def endpoint_of(target: str, store: Server) -> str:
    return store.base + {"oxigraph-update": "/update", "oxigraph-gsp": "/store", "virtuoso": "/sparql"}[target]


def query_url(store: Server) -> str:
    return store.base + ("/sparql" if store.name == "virtuoso" else "/query")


def start_store(target: str, folder: Path, args: argparse.Namespace) -> Server:
    store = virtuoso_store(folder, args.virtuoso_buffers) if target == "virtuoso" else oxigraph_store(folder)
    store.start()
    store.wait_ready(120)
    if isinstance(store, Virtuoso):
        _, isql = virtuoso_commands()
        assert isql is not None
        grant_sparql_update(isql, store.sql_port)
    return store


def stored_quads(store: Server) -> int:
    """Our quads in the store (its own system graphs left out), counted graph by graph."""
    body = urllib.parse.urlencode({"query": COUNT}).encode()
    status, answer = common.http_post(
        query_url(store), body, "application/x-www-form-urlencoded", "application/sparql-results+json", 600
    )
    if status != 200:
        raise RuntimeError(f"count failed: HTTP {status}: {answer[:500]!r}")
    return int(json.loads(answer)["results"]["bindings"][0]["n"]["value"])


def store_size(store: Server) -> int:
    """Bytes of the store's folder on disk."""
    folder = Path(store.argv[store.argv.index("--location") + 1]) if "--location" in store.argv else store.cwd
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


# --- one push ---------------------------------------------------------------------------------------------------


def push_command(data: Path, cache: Path, endpoint: str, args: argparse.Namespace, *more: str) -> list[str]:
    return [
        *guian_kg_command(),
        "push",
        "--data",
        str(data),
        "--cache-dir",
        str(cache),
        f"--endpoint={endpoint}",
        f"--batch-size={args.batch_size}",
        *more,
    ]


def run_push(command: list[str], folder: Path, kill_at: float | None = None) -> dict:
    """Run one push; its wall time, peak RSS, summary and progress lines. With `kill_at` (a share of the
    triples), SIGKILL it once a progress line reports at least that much."""
    stderr_log = folder / "push-stderr.log"
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None and process.stdout is not None
    lines, killed_at = [], None
    for line in process.stderr:
        lines.append(line.rstrip("\n"))
        found = re.match(r"push: (\d+)% \((\d+)/(\d+)", line)
        if kill_at is not None and found and int(found[2]) >= kill_at * int(found[3]):
            process.kill()
            killed_at = int(found[2]) / int(found[3])
            break
    stdout = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    process.stdout.close()
    process.stderr.close()
    stderr_log.write_text("\n".join(lines) + "\n")
    result = {
        "seconds": seconds,
        "peak_rss": usage.ru_maxrss * 1024,
        "returncode": process.returncode,
        "progress_lines": [line for line in lines if line.startswith("push:")],
    }
    if killed_at is not None:
        result["killed_at"] = killed_at
        return result
    summary = SUMMARY.search(stdout)
    if process.returncode != 0 or summary is None:
        raise RuntimeError(f"push failed ({process.returncode}): {stdout[-2000:]} {' '.join(lines[-20:])}")
    triples, graphs, sent, sent_triples, skipped, own = summary.groups()
    result.update(triples=int(triples), graphs=int(graphs), batches_sent=int(sent), skipped=int(skipped))
    result.update(sent_triples=int(sent_triples), push_seconds=float(own), summary=stdout.strip())
    result["rate"] = int(sent_triples) / seconds
    return result


def measure_pushes(data: Path, cache: Path, quads: int, folder: Path, args: argparse.Namespace) -> dict:
    targets = args.targets.split(",")
    runs: list[dict] = []
    for run in range(args.runs):
        load = common.wait_for_quiet(args.max_load, log=log)
        order = targets[run % len(targets) :] + targets[: run % len(targets)]
        for target in order:
            store = start_store(target, folder, args)
            try:
                result = run_push(push_command(data, cache, endpoint_of(target, store), args), folder)
                result.update(target=target, run=run + 1, load_before=load, load_after=os.getloadavg()[0])
                result["stored"] = stored_quads(store)
                result["store_bytes"] = store_size(store)
            finally:
                store.stop()
            log(
                f"run {run + 1}: {target:16} {result['seconds']:7.1f} s  {result['rate']:8.0f} triples/s  "
                f"peak RSS {common.fmt_bytes(result['peak_rss'])}  stored {result['stored']}/{quads}"
            )
            runs.append(result)
    resumes: list[dict] = []
    if args.resume:
        for target in targets:
            store = start_store(target, folder, args)
            endpoint = endpoint_of(target, store)
            try:
                killed = run_push(push_command(data, cache, endpoint, args), folder, kill_at=0.5)
                resumed = run_push(push_command(data, cache, endpoint, args, "--resume"), folder)
                resumed.update(target=target, killed=killed, stored=stored_quads(store))
            finally:
                store.stop()
            full = common.median([r["seconds"] for r in runs if r["target"] == target])
            left = resumed["sent_triples"] / resumed["triples"]
            resumed["share_left"] = left
            if full is not None:
                resumed["expected_s"] = full * left
                resumed["cost_s"] = resumed["seconds"] - full * left
            log(
                f"resume {target:16} killed at {killed['killed_at']:.0%}; resumed {resumed['seconds']:.1f} s for "
                f"{left:.0%} of the triples (full push median × share: {resumed.get('expected_s', 0):.1f} s); "
                f"stored {resumed['stored']}/{quads}"
            )
            resumes.append(resumed)
    summary = {}
    for target in targets:
        mine = [r for r in runs if r["target"] == target]
        summary[target] = {
            "seconds": common.median([r["seconds"] for r in mine]),
            "rate": common.median([r["rate"] for r in mine]),
            "peak_rss": common.median([r["peak_rss"] for r in mine]),
            "all_stored": all(r["stored"] == quads for r in mine),
            "runs": len(mine),
        }
    return {"runs": runs, "resumes": resumes, "summary": summary}


# --- per-query overhead -----------------------------------------------------------------------------------------


def measure_overhead(folder: Path, args: argparse.Namespace) -> dict:
    cache = folder / "overhead-cache"
    store = oxigraph_store(folder, union=True)
    store.start()
    try:
        store.wait_ready(120)
        command = [*guian_kg_command(), "push", "--cache-dir", str(cache), f"--endpoint={store.base}/update"]
        subprocess.run(command, cwd=REPO, check=True, capture_output=True)
        nquads = next(cache.glob("*/dataset.nq"))
        mix = cold_mix(load_library(), load_facts(nquads), per_query=args.per_query, adhoc_count=args.adhoc)
        mix = [q for q in mix if "SERVICE" not in q.text.upper()]  # a SERVICE needs a second endpoint
        runs = []
        for run in range(args.overhead_runs):
            load = common.wait_for_quiet(args.max_load, log=log)
            port = common.free_port()
            serve = [*guian_kg_command(), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"]
            remote = ["--engine", "remote", "--remote-query", store.base + "/query", "--result-cache-mb", "0"]
            ours = Server(
                "ours",
                [*serve, *remote, "--cache-dir", str(cache)],
                port,
                "/readyz",
                log_path=folder / "ours.log",
            )
            result: dict = {"run": run + 1, "load": load}
            with common.running([ours], timeout=600):
                systems = [("direct", store.base, "/query"), ("ours", ours.base, "/sparql")]
                for name, base, path in systems if run % 2 == 0 else systems[::-1]:
                    requests = [request_for(q, path) for q in mix]
                    for label, connections in (("sequential", 1), ("concurrent", args.connections)):
                        outcome = run_wrk(base, requests, mode="once", duration=600, connections=connections)
                        result[f"{name}-{label}"] = outcome.as_dict()
                        log(
                            f"run {run + 1}: {name:6} {label:10} {outcome.throughput:7.1f} req/s  p50 "
                            f"{outcome.p50_ms:6.2f} ms  mean {outcome.mean_ms:6.2f} ms  errors {outcome.errors}"
                        )
            for label in ("sequential", "concurrent"):
                mine, theirs = result[f"ours-{label}"], result[f"direct-{label}"]
                result[f"{label}-p50-ratio"] = mine["p50_ms"] / theirs["p50_ms"]
                result[f"{label}-p50-added-ms"] = mine["p50_ms"] - theirs["p50_ms"]
                result[f"{label}-mean-added-ms"] = mine["mean_ms"] - theirs["mean_ms"]
                result[f"{label}-throughput-ratio"] = mine["throughput"] / theirs["throughput"]
            runs.append(result)
    finally:
        store.stop()
    keys = [k for k in runs[0] if k.endswith(("-ratio", "-added-ms"))]
    return {"queries": len(mix), "runs": runs, "median": {k: common.median([r[k] for r in runs]) for k in keys}}


# --- the report -------------------------------------------------------------------------------------------------


def markdown(report: dict, argv: Sequence[str]) -> str:
    rows = [
        f"# Push at scale and the remote engine's per-query overhead — {report['date']}",
        "",
        f"`python -m benchmarks.push {' '.join(argv)}`",
        "",
        common.machine_markdown(report["machine"]),
        f"- Virtuoso: {report.get('virtuoso') or 'not used'} (Debian), NumberOfBuffers "
        f"{report['settings']['virtuoso_buffers']}",
        "",
    ]
    pushes = report.get("push")
    if pushes:
        data = report["data"]
        rows += [
            f"## Push of {report['snapshot']['quads']:,} quads",
            "",
            f"{data['asserted_triples']:,} asserted triples ({data['organisations']} generated organisations + the "
            f"real data) and their inferences: {report['snapshot']['quads']:,} quads in "
            f"{pushes['runs'][0]['graphs']:,} graphs; reasoned once in {report['snapshot']['seconds']:.0f} s "
            "(not in the times below). "
            f"`--batch-size {report['settings']['batch_size']}`; each push into a fresh store, timed as a whole "
            "(reading the snapshot included).",
            "",
            "| target | runs | median time | median triples/s | peak RSS of push (median) | every run stored all |",
            "|---|---:|---:|---:|---:|---|",
        ]
        for target, s in pushes["summary"].items():
            rows.append(
                f"| {target} | {s['runs']} | {s['seconds']:.1f} s | {s['rate']:,.0f} | "
                f"{common.fmt_bytes(s['peak_rss'])} | {'yes' if s['all_stored'] else '**no**'} |"
            )
        rows += [
            "",
            "| run | target | load before | time | triples/s | batches | store on disk |",
            "|---|---|---:|---:|---:|---:|---:|",
        ]
        for r in pushes["runs"]:
            rows.append(
                f"| {r['run']} | {r['target']} | {r['load_before']:.2f} | {r['seconds']:.1f} s | {r['rate']:,.0f} | "
                f"{r['batches_sent']} | {common.fmt_bytes(r['store_bytes'])} |"
            )
        if pushes["resumes"]:
            rows += [
                "",
                "### Resume after a kill",
                "",
                "| target | killed at | resumed push | triples left | full push median × share left | cost of "
                "resuming | stored all |",
                "|---|---:|---:|---:|---:|---:|---|",
            ]
            for r in pushes["resumes"]:
                rows.append(
                    f"| {r['target']} | {r['killed']['killed_at']:.0%} | {r['seconds']:.1f} s | {r['share_left']:.0%} "
                    f"| {r.get('expected_s', 0):.1f} s | {r.get('cost_s', 0):+.1f} s | "
                    f"{'yes' if r['stored'] == report['snapshot']['quads'] else '**no**'} |"
                )
    overhead = report.get("overhead")
    if overhead:
        m = overhead["median"]
        rows += [
            "",
            "## The remote engine's overhead per query",
            "",
            f"{overhead['queries']} distinct queries (the cold mix: named queries with parameters + ad-hoc), POST, "
            "each once, on the shipped data; direct to Oxigraph server vs `guian-kg serve --engine remote "
            f"--result-cache-mb 0 --workers 2` over the same server. Medians of {len(overhead['runs'])} runs.",
            "",
            f"| measure | sequential (1 connection) | concurrent ({report['settings']['connections']} connections) |",
            "|---|---:|---:|",
            f"| p50 latency, ours ÷ direct | {m['sequential-p50-ratio']:.2f}× | {m['concurrent-p50-ratio']:.2f}× |",
            f"| p50 latency added | {m['sequential-p50-added-ms']:+.2f} ms | {m['concurrent-p50-added-ms']:+.2f} ms |",
            f"| mean latency added | {m['sequential-mean-added-ms']:+.2f} ms | "
            f"{m['concurrent-mean-added-ms']:+.2f} ms |",
            f"| throughput, ours ÷ direct | {m['sequential-throughput-ratio']:.2f}× | "
            f"{m['concurrent-throughput-ratio']:.2f}× |",
            "",
            "| run | load | system | connections | req/s | p50 ms | mean ms | p99 ms | errors |",
            "|---|---:|---|---:|---:|---:|---:|---:|---:|",
        ]
        for r in overhead["runs"]:
            for name in ("direct", "ours"):
                for label, connections in (("sequential", 1), ("concurrent", report["settings"]["connections"])):
                    o = r[f"{name}-{label}"]
                    rows.append(
                        f"| {r['run']} | {r['load']:.2f} | {name} | {connections} | {o['throughput']:.1f} | "
                        f"{o['p50_ms']:.2f} | {o['mean_ms']:.2f} | {o['p99_ms']:.2f} | {o['errors']} |"
                    )
    return "\n".join(rows) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.push", description=__doc__.split("\n")[0])
    parser.add_argument("--size", default="1m", help="asserted triples to generate (10k, 1m…)")
    parser.add_argument("--runs", type=int, default=3, help="pushes per target")
    parser.add_argument("--targets", default=",".join(TARGETS))
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--no-resume", dest="resume", action="store_false", help="skip the kill-and-resume step")
    parser.add_argument("--virtuoso-buffers", type=int, default=170000, help="NumberOfBuffers (8 KiB pages)")
    parser.add_argument("--overhead-runs", type=int, default=3)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--per-query", type=int, default=20)
    parser.add_argument("--adhoc", type=int, default=150)
    parser.add_argument("--skip-push", action="store_true")
    parser.add_argument("--skip-overhead", action="store_true")
    parser.add_argument("--max-load", type=float, default=1.5, help="wait (≤ 5 min) for this 1-minute load")
    parser.add_argument("--label", default="push", help="result file: results/<date>-<label>.md")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwinds like Ctrl-C: the servers are stopped
    folder = Path(tempfile.mkdtemp(prefix="guian-kg-push-"))
    report: dict = {
        "date": dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "settings": vars(args),
        "machine": common.machine(),
    }
    binary, isql = virtuoso_commands()
    if "virtuoso" in args.targets and not (binary and isql):
        parser.error("virtuoso-t and isql-vt are not installed (apt-get install virtuoso-opensource-7-bin)")
    report["virtuoso"] = virtuoso_version(binary) if binary else None
    try:
        if not args.skip_push:
            data, report["data"] = prepare_data(folder, common.parse_size(args.size))
            log(f"{report['data']['asserted_triples']:,} asserted triples; reasoning once")
            cache = folder / "cache"
            report["snapshot"] = build_snapshot(data, cache)
            log(f"snapshot: {report['snapshot']['quads']:,} quads ({report['snapshot']['seconds']:.0f} s)")
            report["push"] = measure_pushes(data, cache, report["snapshot"]["quads"], folder, args)
        if not args.skip_overhead:
            report["overhead"] = measure_overhead(folder, args)
        used = sys.argv[1:] if argv is None else list(argv)
        path = RESULTS / f"{dt.date.today().isoformat()}-{args.label}.md"
        common.write_report(path, markdown(report, used), report)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
