"""The cold mix at scale: ours against Oxigraph server on the same generated data (issue 17), on disk at 1M.

    python -m benchmarks.scale_cold [--size 1m] [--runs 3] [--connections 8]

The data is built as `benchmarks.scale` builds it (the real data plus generated organisations, reasoned with the
service's own reasoner, the closure cached); ours serves it from that cache (`guian-kg serve --workers 2`: above
`--memory-max-quads`, the on-disk store), Oxigraph server (`serve-read-only --union-default-graph`) the same
quads (`dataset.nq`, asserted + inferred). The cold mix (named queries with up to `--per-query` parameter
assignments + `--adhoc` ad-hoc queries drawn from the scaled data, POST, each once) runs on both, servers started
fresh for each run; our throughput ÷ Oxigraph's per run, then the median. Answers are not compared here (the
HTTP benchmark compares them on the real data); errors (non-2xx, timeouts) are counted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import signal
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from benchmarks import common
from benchmarks.common import RESULTS, VENV_BIN, Server, log
from benchmarks.loadgen import run_wrk
from benchmarks.scale import CACHE_WRITE, REASON, run_child, scratch_checkout
from benchmarks.servers import prepare_oxigraph
from benchmarks.workloads import cold_mix, load_facts, request_for
from service.library.queries import load_library

SERVE = [sys.executable, "-m", "service.cli", "serve", "--host", "127.0.0.1", "--workers", "2"]
OXIGRAPH = [str(VENV_BIN / "oxigraph"), "serve-read-only", "--union-default-graph"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale_cold", description=__doc__.split("\n")[0])
    parser.add_argument("--size", default="1m")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--per-query", type=int, default=20)
    parser.add_argument("--adhoc", type=int, default=150)
    parser.add_argument("--cold-cap", type=float, default=300.0)
    parser.add_argument("--max-load", type=float, default=1.5)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwinds like Ctrl-C: the servers are stopped
    target = common.parse_size(args.size)
    folder = Path(tempfile.mkdtemp(prefix="guian-kg-scale-cold-"))
    report: dict = {"date": dt.datetime.now().strftime("%Y-%m-%d %H:%M"), "settings": vars(args), "runs": []}
    try:
        root, counts = scratch_checkout(folder, target)
        cache = folder / "cache"
        report["generate"] = counts
        report["reason"] = run_child(root, REASON.replace("CACHE", repr(str(cache))), timeout=3600)
        report["cache"] = run_child(root, CACHE_WRITE.replace("CACHE", repr(str(cache))), timeout=1800)
        nquads = next(cache.glob("*/dataset.nq"))
        log(f"{args.size}: {report['cache']['quads']} quads")
        store, report["oxigraph_load_s"] = prepare_oxigraph(folder, nquads)
        mix = cold_mix(load_library(), load_facts(nquads), per_query=args.per_query, adhoc_count=args.adhoc)
        report["queries"] = len(mix)

        def systems() -> tuple[Server, Server]:
            port, ox_port = common.free_port(), common.free_port()
            ours = Server(
                "ours",
                [*SERVE, "--port", str(port), "--cache-dir", str(cache)],
                port,
                "/readyz",
                env={"PYTHONPATH": str(root)},
                cwd=root,
                log_path=folder / "ours.log",
            )
            oxigraph = Server(
                "oxigraph",
                [*OXIGRAPH, "--location", str(store), "--bind", f"127.0.0.1:{ox_port}"],
                ox_port,
                "/",
                log_path=folder / "oxigraph.log",
            )
            return ours, oxigraph

        first, _ = systems()
        with common.running([first], timeout=1800):  # completes the cache: the on-disk store
            report["first_startup_s"] = first.startup_seconds
        for run in range(args.runs):
            load = common.wait_for_quiet(args.max_load, log=log)
            servers = systems()
            result: dict = {"load": load}
            with common.running(servers, timeout=1800):
                for server in servers if run % 2 == 0 else servers[::-1]:
                    path = "/sparql" if server.name == "ours" else "/query"
                    requests = [request_for(q, path) for q in mix]
                    outcome = run_wrk(
                        server.base, requests, mode="once", duration=args.cold_cap, connections=args.connections
                    )
                    result[server.name] = outcome.as_dict()
                    log(
                        f"run {run + 1}: {server.name:9} {outcome.throughput:8.1f} req/s  p50 {outcome.p50_ms:.1f} ms"
                        f"  p99 {outcome.p99_ms:.1f} ms  n={outcome.requests}  errors {outcome.errors}"
                    )
            result["ratio"] = result["ours"]["throughput"] / result["oxigraph"]["throughput"]
            report["runs"].append(result)
        ratios = [r["ratio"] for r in report["runs"]]
        report["ratio"] = common.median(ratios)
        rows = [
            f"# The cold mix at {args.size}: ours ÷ Oxigraph server — {report['date']}",
            "",
            f"`python -m benchmarks.scale_cold {' '.join(sys.argv[1:] if argv is None else argv)}`",
            "",
            common.machine_markdown(common.machine()),
            "",
            f"{report['cache']['quads']:,} quads (asserted + inferred); {len(mix)} distinct queries, POST, each once, "
            f"{args.connections} connections; servers fresh for each run; ours from its on-disk store.",
            "",
            "| run | load | ours req/s | ours p50 / p99 (ms) | Oxigraph req/s | Oxigraph p50 / p99 (ms) "
            "| ours ÷ Oxigraph | errors (ours / Oxigraph) |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for i, r in enumerate(report["runs"], 1):
            o, x = r["ours"], r["oxigraph"]
            rows.append(
                f"| {i} | {r['load']:.2f} | {o['throughput']:.1f} | {o['p50_ms']:.1f} / {o['p99_ms']:.1f} | "
                f"{x['throughput']:.1f} | {x['p50_ms']:.1f} / {x['p99_ms']:.1f} | {r['ratio']:.2f}× | "
                f"{o['errors']} / {x['errors']} |"
            )
        rows += ["", f"Median ratio: **{report['ratio']:.2f}×** (runs {min(ratios):.2f}–{max(ratios):.2f}×).", ""]
        label = args.size.lower()
        common.write_report(RESULTS / f"{dt.date.today().isoformat()}-scale-cold-{label}.md", "\n".join(rows), report)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
