"""Scale benchmark: larger organisations in our vocabulary at 10k, 100k, 1M triples.

    python -m benchmarks.scale [--sizes 10k,100k,1m] [--reason-cap 300] [--duration 5]

For each size: generate the data (benchmarks.orggen, streamed TriG) into a scratch checkout (a copy of `service/`
with the real ontology and queries, and graph_data = the real data + the generated file), then, each step in a
fresh process so that its peak RSS is its own:

1. load   — the TriG files into a pyoxigraph Store: time, peak RSS;
2. reason — the service's own path (rdflib parse, then the default `rl` reasoner + filter); its closure becomes
   the service's cached closure. Then the reference: owlrl on the same data under a time cap, and whether the two
   closures are equal; past the cap owlrl's time is extrapolated from the smaller sizes (power law), marked so;
3. serve  — `guian-kg serve --workers 2` from that cached closure: seconds until /readyz, memory of the process
   tree, then single-client latency of the flagship (repeated) and of a small cold mix (each request once).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path

import pyoxigraph as ox

from benchmarks import common
from benchmarks.common import REPO, RESULTS, Server, log, parse_size, size_label
from benchmarks.compare import send
from benchmarks.loadgen import run_wrk
from benchmarks.orggen import generate
from benchmarks.workloads import adhoc, flagship, load_facts, named_variants, request_for
from service.library.queries import load_library

TARGETS = {"reason_100k_s": 10.0, "startup_1m_s": 5.0, "memory_1m_bytes": 2 * 2**30}


# --- the scratch checkout --------------------------------------------------------------------------------


def scratch_checkout(folder: Path, target: int) -> tuple[Path, dict]:
    """A checkout whose graph_data holds the real data plus generated organisations up to `target` triples."""
    root = folder / "checkout"
    shutil.copytree(REPO / "service", root / "service", ignore=shutil.ignore_patterns("__pycache__", "_data"))
    (root / "ontology").symlink_to(REPO / "ontology")
    (root / "queries").symlink_to(REPO / "queries")
    data = root / "graph_data"
    data.mkdir()
    for path in (REPO / "graph_data").iterdir():
        (data / path.name).symlink_to(path)
    base = _count_real_triples()
    started = time.perf_counter()
    counts = generate(
        max(target - base, 0), data / "zz-generated.trig", REPO / "graph_data" / "source" / "000_6a03369a891ee188.txt"
    )
    counts.update(
        seconds=round(time.perf_counter() - started, 2), real_triples=base, total_triples=base + counts["triples"]
    )
    return root, counts


def _count_real_triples() -> int:
    store = ox.Store()
    store.load(
        path=str(REPO / "ontology" / "guian-kg.ttl"),
        format=ox.RdfFormat.TURTLE,
        to_graph=ox.NamedNode("https://w3id.org/guian-kg/graph/ontology"),
    )
    for path in sorted((REPO / "graph_data").glob("*.trig")):
        store.load(path=str(path), format=ox.RdfFormat.TRIG)
    return len(store)


def run_child(root: Path, code: str, timeout: float | None) -> dict:
    """Run `code` in a fresh interpreter inside the scratch checkout; its last stdout line is JSON."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    process = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        return {"timed_out": True}
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if process.returncode != 0 or not lines:
        raise RuntimeError(f"child failed ({process.returncode}): {err[-3000:]}")
    return json.loads(lines[-1])


LOAD = """
import json, resource, time
from pathlib import Path
import pyoxigraph as ox
started = time.perf_counter()
store = ox.Store()
store.bulk_load(path="ontology/guian-kg.ttl", format=ox.RdfFormat.TURTLE,
                to_graph=ox.NamedNode("https://w3id.org/guian-kg/graph/ontology"))
for path in sorted(Path("graph_data").glob("*.trig")):
    store.bulk_load(path=str(path), format=ox.RdfFormat.TRIG)
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "quads": len(store),
                  "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""

REASON = """
import json, resource, time
from pathlib import Path
from service import names
from service.data.sources import asserted_dataset, reason, data_version
started = time.perf_counter()
dataset = asserted_dataset()
parsed = time.perf_counter()
closure = reason(dataset)
reasoned = time.perf_counter()
cache = Path(CACHE) / data_version()
cache.mkdir(parents=True, exist_ok=True)
lines = closure.inferred.serialize(format="nt").splitlines()
inferred_graph = names.INFERRED_GRAPH
with open(cache / "inferred.nq", "w", encoding="utf-8") as out:
    for line in lines:
        line = line.strip()
        if line.endswith(" ."):
            out.write(line[:-2] + f" <{inferred_graph}> .\\n")
print(json.dumps({"parse_s": parsed - started, "reason_s": reasoned - parsed, "reasoner": closure.reasoner,
                  "asserted": closure.asserted_triples, "closure": closure.closure_triples,
                  "inferred_kept": len(closure.triples), "junk": closure.dropped_junk,
                  "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""

# The reference: owlrl on the same parse as a fresh rl run (blank nodes are then the same objects), compared.
REFERENCE = """
import json, resource, time
from service.data.sources import asserted_dataset, reason
dataset = asserted_dataset()
fast = set(reason(dataset).triples)
started = time.perf_counter()
reference = set(reason(dataset, "owlrl").triples)
print(json.dumps({"reason_s": time.perf_counter() - started, "inferred_kept": len(reference),
                  "equal": fast == reference, "missing": len(reference - fast), "extra": len(fast - reference),
                  "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""

CACHE_WRITE = """
import json, time
from pathlib import Path
import pyoxigraph as ox
from service import names
from service.data.sources import data_version
started = time.perf_counter()
folder = Path(CACHE) / data_version()
store = ox.Store()
store.bulk_load(path="ontology/guian-kg.ttl", format=ox.RdfFormat.TURTLE,
                to_graph=ox.NamedNode(names.ONTOLOGY_GRAPH))
for path in sorted(Path("graph_data").glob("*.trig")):
    store.bulk_load(path=str(path), format=ox.RdfFormat.TRIG)
graphs = sorted(g.value for g in store.named_graphs() if isinstance(g, ox.NamedNode))
store.bulk_load(path=str(folder / "inferred.nq"), format=ox.RdfFormat.N_QUADS)
tmp = folder / "dataset.nq.tmp"
store.dump(output=str(tmp), format=ox.RdfFormat.N_QUADS)
tmp.replace(folder / "dataset.nq")
(folder / "graphs.txt").write_text("\\n".join([*[g for g in graphs if g != names.INFERRED_GRAPH],
                                             names.INFERRED_GRAPH]) + "\\n", encoding="utf-8")
print(json.dumps({"seconds": time.perf_counter() - started, "quads": len(store),
                  "bytes": (folder / "dataset.nq").stat().st_size}))
"""


# --- one size --------------------------------------------------------------------------------------------


def measure_size(target: int, args: argparse.Namespace, folder: Path, library, earlier: list[dict]) -> dict:
    row: dict = {"target": target, "label": size_label(target)}
    root, counts = scratch_checkout(folder, target)
    row["generate"] = counts
    log(
        f"{row['label']}: generated {counts['triples']} triples ({counts['organisations']} organisations, "
        f"{counts['bytes'] / 2**20:.1f} MiB) in {counts['seconds']} s"
    )
    cache = folder / "cache"

    row["load"] = run_child(root, LOAD, timeout=1800)
    log(
        f"{row['label']}: pyoxigraph load {row['load']['seconds']:.2f} s, peak RSS "
        f"{common.fmt_bytes(row['load']['peak_rss'])}"
    )

    row["reason"] = run_child(root, REASON.replace("CACHE", repr(str(cache))), timeout=3600)
    log(
        f"{row['label']}: parse {row['reason']['parse_s']:.1f} s + {row['reason']['reasoner']} reasoning "
        f"{row['reason']['reason_s']:.1f} s, {row['reason']['inferred_kept']} inferred kept, "
        f"peak RSS {common.fmt_bytes(row['reason']['peak_rss'])}"
    )
    if target <= args.reason_max:
        row["reference"] = run_child(root, REFERENCE, timeout=args.reason_cap)
    else:
        row["reference"] = {"timed_out": True, "skipped": True}
    if row["reference"].get("timed_out"):
        row["reference"]["extrapolated_s"] = extrapolate(earlier, target)
        log(
            f"{row['label']}: owlrl not run to the end (cap {args.reason_cap:.0f} s, tried up to "
            f"{size_label(args.reason_max)}); extrapolated {row['reference']['extrapolated_s']}"
        )
    else:
        log(
            f"{row['label']}: owlrl reasoning {row['reference']['reason_s']:.1f} s, "
            f"{row['reference']['inferred_kept']} inferred kept; closures equal: {row['reference']['equal']}"
        )
    row["cache"] = run_child(root, CACHE_WRITE.replace("CACHE", repr(str(cache))), timeout=1800)

    port = common.free_port()
    server = Server(
        f"ours-{row['label']}",
        [
            sys.executable,
            "-m",
            "service.cli",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "2",
            "--cache-dir",
            str(cache),
        ],
        port,
        "/readyz",
        env={"PYTHONPATH": str(root)},
        cwd=root,
        log_path=folder / "serve.log",
    )
    # The first start builds what the cache keeps beside the closure (a large dataset's on-disk store, the
    # named-query vocabulary); start-up is measured on the next one, from the whole cache.
    with common.running([server], timeout=1800):
        row["first_startup_s"] = server.startup_seconds
    log(f"{row['label']}: first start (completes the cache) {row['first_startup_s']:.2f} s")
    with common.running([server], timeout=1800):
        row["startup_s"] = server.startup_seconds
        time.sleep(1.0)
        row["memory"] = common.memory_of(server.pids())
        log(
            f"{row['label']}: ready after {row['startup_s']:.2f} s; PSS {common.fmt_bytes(row['memory']['pss_sum'])}"
            f", RSS sum {common.fmt_bytes(row['memory']['rss_sum'])} over {row['memory']['processes']} processes"
        )
        nquads = next(cache.glob("*/dataset.nq"))
        facts = load_facts(nquads)
        mix = named_variants(library, facts, per_query=2, seed=5) + adhoc(facts, 20, seed=5)
        single = dict(connections=1, threads=1, timeout=60.0)
        flag = run_wrk(
            server.base, [request_for(flagship(library), "/sparql")], mode="cycle", duration=args.duration, **single
        )
        cold = run_wrk(server.base, [request_for(q, "/sparql") for q in mix], mode="once", duration=600, **single)
        row["flagship"], row["cold"] = flag.as_dict(), cold.as_dict()
        # three timed requests one by one: the flagship's latency even where wrk's window saw none finish
        row["flagship_direct"] = []
        for _ in range(3):
            started = time.perf_counter()
            status, _, _ = send(server.base, request_for(flagship(library), "/sparql"), timeout=120)
            row["flagship_direct"].append({"status": status, "seconds": round(time.perf_counter() - started, 3)})
        row["memory_after"] = common.memory_of(server.pids())
        log(
            f"{row['label']}: flagship p50 {flag.p50_ms:.1f} ms p99 {flag.p99_ms:.1f} ms; cold mix ({cold.requests}) "
            f"p50 {cold.p50_ms:.1f} ms p99 {cold.p99_ms:.1f} ms; errors {flag.errors + cold.errors}"
        )
    shutil.rmtree(root, ignore_errors=True)
    shutil.rmtree(cache, ignore_errors=True)
    return row


def _flagship_cell(r: dict) -> str:
    flag = r["flagship"]
    direct = r.get("flagship_direct") or []
    if flag["requests"]:
        return f"{flag['p50_ms']:.1f} / {flag['p99_ms']:.1f} ms"
    if direct:
        return "none within the window; one by one: " + ", ".join(
            f"{d['seconds']:.1f} s (HTTP {d['status']})" for d in direct
        )
    return "none finished"


def extrapolate(earlier: list[dict], target: int) -> str:
    """owlrl time at `target` from a power law through the measured sizes (or linear from one point)."""
    points = [
        (r["generate"]["total_triples"], r["reference"]["reason_s"])
        for r in earlier
        if "reason_s" in r.get("reference", {})
    ]
    if not points:
        return "unknown (no size finished)"
    if len(points) == 1:
        (n, t), exponent = points[0], 1.0
    else:
        (n0, t0), (n, t) = points[-2], points[-1]
        exponent = math.log(t / t0) / math.log(n / n0) if t0 > 0 and n != n0 else 1.0
    estimate = t * (target / n) ** exponent
    return f"≈ {estimate:,.0f} s (power law, exponent {exponent:.2f}, from {len(points)} measured size(s))"


def growth(rows: list[dict], key) -> str:
    """The exponent b of value ∝ size^b between the first and last size where the value is known."""
    points = [(r["generate"]["total_triples"], key(r)) for r in rows]
    points = [(n, v) for n, v in points if v]
    if len(points) < 2:
        return "–"
    (n0, v0), (n1, v1) = points[0], points[-1]
    return f"{math.log(v1 / v0) / math.log(n1 / n0):.2f}"


def markdown(report: dict) -> str:
    rows = report["rows"]
    lines = [
        f"# Scale benchmark — {report['date']}",
        "",
        f"`python -m benchmarks.scale {report['argv']}`",
        "",
        "## Machine",
        "",
        common.machine_markdown(report["machine"]),
        "",
        "## Results",
        "",
        "| size | triples (asserted) | orgs | load into pyoxigraph | rdflib parse | reasoning (rl) | inferred kept | "
        "owlrl (reference) | closure = owlrl's | cached closure (quads) | start-up from cache | "
        "PSS / RSS sum (server tree) | flagship p50 / p99 | cold mix p50 / p99 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        reason, reference = r["reason"], r["reference"]
        reasoning = f"{reason['reason_s']:.2f} s" + ("" if reason["reasoner"] == "rl" else " (fell back to owlrl)")
        if "reason_s" in reference:
            owlrl = f"{reference['reason_s']:.1f} s ({reference['reason_s'] / reason['reason_s']:.0f}× rl)"
            same = "yes" if reference["equal"] else f"NO: {reference['missing']} missing, {reference['extra']} extra"
        else:
            why = "not tried" if reference.get("skipped") else f"> {report['settings']['reason_cap']:.0f} s cap"
            owlrl, same = f"{why}; extrapolated {reference.get('extrapolated_s')}", "– (owlrl did not run)"
        memory = r.get("memory_after") or r.get("memory") or {}
        lines.append(
            f"| {r['label']} | {r['generate']['total_triples']:,} | {r['generate']['organisations']} | "
            f"{r['load']['seconds']:.2f} s, {common.fmt_bytes(r['load']['peak_rss'])} | {reason['parse_s']:.1f} s | "
            f"{reasoning} | {reason['inferred_kept']} | {owlrl} | {same} | {r['cache']['quads']:,} | "
            f"{r['startup_s']:.2f} s (first: {r.get('first_startup_s') or 0:.1f} s) | "
            f"{common.fmt_bytes(memory.get('pss_sum'))} / "
            f"{common.fmt_bytes(memory.get('rss_sum'))} | {_flagship_cell(r)} | "
            f"{r['cold']['p50_ms']:.1f} / {r['cold']['p99_ms']:.1f} ms ({r['cold']['errors']} errors) |"
        )
    lines += [
        "",
        "Growth exponents b (value ∝ triples^b, first to last size): "
        f"load {growth(rows, lambda r: r['load']['seconds'])}, "
        f"rl reasoning {growth(rows, lambda r: r['reason']['reason_s'])}, "
        f"owlrl reasoning {growth(rows, lambda r: r['reference'].get('reason_s'))}, "
        f"start-up {growth(rows, lambda r: r['startup_s'])}, "
        f"server PSS {growth(rows, lambda r: (r.get('memory_after') or {}).get('pss_sum'))}, "
        f"flagship p50 {growth(rows, lambda r: r['flagship']['p50_ms'])}, "
        f"cold p50 {growth(rows, lambda r: r['cold']['p50_ms'])}. "
        "b ≈ 1 is linear; b ≈ 0 is flat.",
        "",
        "## Targets",
        "",
        "| target | measured | verdict | margin |",
        "|---|---|---|---|",
    ]
    for t in report["targets"]:
        lines.append(f"| {t['target']} | {t['measured']} | {t['verdict']} | {t['margin']} |")
    lines += [
        "",
        "## How to read this",
        "",
        "Each size is the real dataset plus generated organisations (benchmarks/orggen.py) in our vocabulary. "
        "*Load* is pyoxigraph bulk-loading the TriG files; *parse* and *reasoning (rl)* are the service's own "
        "path (`service.data.sources.asserted_dataset`, then `reason` with the default reasoner) in a fresh "
        "process, and "
        "its closure is the one cached; *owlrl* is the reference reasoner on the same parse in another process "
        "with a time cap, and *closure = owlrl's* compares the two kept sets triple by triple, blank nodes "
        "included (where owlrl does not finish, its time is extrapolated and there is nothing to compare). "
        "*Start-up* is `guian-kg serve --workers 2` until /readyz answers 200, with the closure cached; *first* "
        "is the start before it, which completes the cache (a large dataset's on-disk store, the named-query "
        "vocabulary); memory and latency are measured on the second. "
        "Memory is summed over the server's process tree: PSS counts shared pages once (the memory really "
        "used), RSS sum counts them per process. Latencies are one client, no concurrency: the flagship "
        "repeated, the cold mix (2 variants of each named query + 20 ad-hoc) each once.",
        "",
    ]
    return "\n".join(lines)


def targets(rows: list[dict]) -> list[dict]:
    out = []
    by_size = {r["target"]: r for r in rows}
    r100 = by_size.get(100_000)
    if r100:
        value = r100["reason"]["reason_s"]
        out.append(_target("reasoning on 100k triples ≤ 10 s (rl)", value, TARGETS["reason_100k_s"], "s"))
    r1m = by_size.get(1_000_000)
    if r1m:
        out.append(
            _target("start-up from a cached closure at 1M ≤ 5 s", r1m["startup_s"], TARGETS["startup_1m_s"], "s")
        )
        memory = r1m.get("memory_after") or r1m["memory"]
        out.append(
            _target(
                "memory at 1M ≤ 2 GiB (PSS of the server tree)", memory["pss_sum"], TARGETS["memory_1m_bytes"], "bytes"
            )
        )
        out.append(
            _target(
                "memory at 1M ≤ 2 GiB (RSS summed per process)", memory["rss_sum"], TARGETS["memory_1m_bytes"], "bytes"
            )
        )
    return out


def _target(name: str, value: float, limit: float, unit: str) -> dict:
    shown = common.fmt_bytes(value) if unit == "bytes" else f"{value:.2f} s"
    return {
        "target": name,
        "measured": shown,
        "verdict": "PASS" if value <= limit else "MISS",
        "margin": f"{(value / limit - 1) * 100:+.0f} % of the limit",
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale", description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10k,100k,1m")
    parser.add_argument("--reason-cap", type=float, default=300.0, help="seconds owlrl may take at one size")
    parser.add_argument(
        "--reason-max",
        type=parse_size,
        default=parse_size("300k"),
        help="largest size owlrl is tried at (beyond it: extrapolated)",
    )
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of the repeated flagship")
    parser.add_argument("--max-load", type=float, default=1.5)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sizes = [parse_size(s) for s in args.sizes.split(",") if s.strip()]
    library = load_library()
    report: dict = {
        "date": dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "argv": " ".join(sys.argv[1:]),
        "settings": vars(args),
        "machine": common.machine(),
        "rows": [],
    }
    for size in sizes:
        common.wait_for_quiet(args.max_load, log=log)
        folder = Path(tempfile.mkdtemp(prefix=f"guian-kg-scale-{size_label(size)}-"))
        try:
            report["rows"].append(measure_size(size, args, folder, library, report["rows"]))
        finally:
            if not args.keep:
                shutil.rmtree(folder, ignore_errors=True)
    report["targets"] = targets(report["rows"])
    common.write_report(RESULTS / f"scale-{dt.date.today().isoformat()}.md", markdown(report), report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
