"""What the connection guard costs: the WSGI hello world direct, and behind the guard, same wrk, same request.

    python -m benchmarks.guard [--runs 3] [--duration 5] [--connections 8]

Two granian hello worlds (`benchmarks/hello.py`, 2 workers): one on a TCP port, one on a Unix socket with the
guard (`service.runtime.guard`, as `guian-kg serve` runs it) on a TCP port in front. Each run drives both with wrk
(POST of a small query, kept-alive connections); the median of the runs and the guard's cost per request
(machine-ms per request behind it minus direct: cores × 1000 ÷ throughput) go to results/<date>-guard.md.
Run it from an older checkout (same command there) for "before".
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from benchmarks import common
from benchmarks.common import REPO, RESULTS, VENV_BIN, Server, log
from benchmarks.loadgen import Request, run_wrk

GUARD = (
    "import socket, sys; from pathlib import Path; from service.runtime.guard import Limits, run_guard; "
    "run_guard(socket.socket(fileno=int(sys.argv[1])), Path(sys.argv[2]), Limits(4096, 10, 10, 15, 1 << 20))"
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.guard", description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--label", default="after", help="names the result file: <date>-guard-<label>.md")
    parser.add_argument("--max-load", type=float, default=1.5)
    args = parser.parse_args(argv)
    load = common.wait_for_quiet(args.max_load, log=log)
    folder = Path(tempfile.mkdtemp(prefix="guian-kg-guard-"))
    upstream = folder / "hello.sock"
    direct_port = common.free_port()
    hello = [str(VENV_BIN / "granian"), "--interface", "wsgi", "--workers", "2"]
    direct = Server("direct", [*hello, "--port", str(direct_port), "benchmarks.hello:app"], direct_port, "/")
    listener = socket.create_server(("127.0.0.1", 0), backlog=4096)
    port = listener.getsockname()[1]
    behind = Server("behind", [*hello, "--uds", str(upstream), "benchmarks.hello:app"], port, "/")
    request = [Request("POST", "/sparql", b"ASK { ?s ?p ?o }", "application/sparql-query", "application/json")]
    cores = os.cpu_count() or 2
    results: dict[str, list[dict]] = {"direct": [], "behind the guard": []}
    guard = None
    try:
        with common.running([direct]):
            behind.start()
            os.set_inheritable(listener.fileno(), True)
            guard = subprocess.Popen(
                [sys.executable, "-c", GUARD, str(listener.fileno()), str(upstream)],
                pass_fds=[listener.fileno()],
                cwd=REPO,
            )
            behind.wait_ready()
            for run in range(args.runs):
                for name, server in (("direct", direct), ("behind the guard", behind)):
                    result = run_wrk(
                        server.base, request, mode="cycle", duration=args.duration, connections=args.connections
                    )
                    results[name].append(result.as_dict())
                    log(f"run {run + 1}: {name:17} {result.throughput:9.0f} req/s  p50 {result.p50_ms:.2f} ms")
    finally:
        if guard is not None:
            guard.kill()
            guard.wait()
        behind.stop()
        listener.close()
    rows = {
        name: {
            "throughput": common.median([r["throughput"] for r in values]),
            "p50_ms": common.median([r["p50_ms"] for r in values]),
            "p99_ms": common.median([r["p99_ms"] for r in values]),
        }
        for name, values in results.items()
    }
    ms = {name: cores * 1000 / row["throughput"] for name, row in rows.items()}
    lines = [
        f"# The connection guard's cost — {dt.datetime.now():%Y-%m-%d %H:%M} ({args.label})",
        "",
        f"`python -m benchmarks.guard {' '.join(sys.argv[1:] if argv is None else argv)}`",
        "",
        common.machine_markdown(common.machine()),
        "",
        f"Median of {args.runs} runs; wrk, {args.connections} connections, {args.duration:g} s each; load at start "
        f"{load:.2f}.",
        "",
        "| granian hello world | req/s | p50 (ms) | p99 (ms) | machine-ms per request |",
        "|---|---:|---:|---:|---:|",
        *(
            f"| {name} | {row['throughput']:.0f} | {row['p50_ms']:.2f} | {row['p99_ms']:.2f} | {ms[name]:.3f} |"
            for name, row in rows.items()
        ),
        "",
        f"The guard's cost per request: {ms['behind the guard'] - ms['direct']:.3f} machine-ms.",
        "",
    ]
    report = {"label": args.label, "runs": results, "summary": rows, "machine_ms": ms}
    common.write_report(RESULTS / f"{dt.date.today().isoformat()}-guard-{args.label}.md", "\n".join(lines), report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
