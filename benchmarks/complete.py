"""How fast does the editor's completion answer? GET /api/complete on a real `guian-kg serve`, over keep-alive.

    .venv/bin/python -m benchmarks.complete                 # 5 runs x 200 requests of each typed text
    .venv/bin/python -m benchmarks.complete --runs 3 --requests 100 --data graph_data/ --data ontology/

One request at a time (a person types; the editor asks once per pause), each timed from sending to the last byte.
Reported: the first request after start (it builds the data version's index), then per run the p50 and p95 over
all texts, and the median of the runs' p50s (the number the issue's target — p50 ≤ 10 ms — is about).
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

from benchmarks import common
from benchmarks.servers import guian_kg_command

# What an analyst types: Chinese and English labels, a prefixed name, a prefix, an IRI start, one letter.
TYPED = (
    ("秘书六科", "any", "zh"),
    ("land manage", "any", "en"),
    ("gk:handles", "any", "en"),
    ("Section", "class", "en"),
    ("协", "any", "zh"),
    ("sk", "prefix", "en"),
    ("<https://w3id.org/guian-kg/id/section/", "any", "en"),
    ("a", "any", "en"),
)


def timed_get(connection: http.client.HTTPConnection, path: str) -> tuple[float, dict]:
    """Seconds from sending the request to reading its whole body, and the JSON body."""
    started = time.perf_counter()
    connection.request("GET", path, headers={"Accept": "application/json"})
    response = connection.getresponse()
    body = response.read()
    elapsed = time.perf_counter() - started
    if response.status != 200:
        raise RuntimeError(f"{path}: {response.status} {body[:300]!r}")
    return elapsed, json.loads(body)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--requests", type=int, default=200, help="requests per typed text per run")
    parser.add_argument("--data", action="append", help="serve these RDF files/folders (guian-kg serve --data)")
    parser.add_argument("--max-load", type=float, default=1.5)
    args = parser.parse_args(argv)

    folder = Path(tempfile.mkdtemp(prefix="guian-kg-complete-"))
    port = common.free_port()
    command = [*guian_kg_command(), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    command += [f"--cache-dir={folder / 'cache'}", *(f"--data={d}" for d in args.data or ())]
    server = common.Server("guian-kg", command, port, "/readyz", log_path=folder / "server.log")
    report: dict = {"machine": common.machine(), "runs": [], "typed": [t[0] for t in TYPED]}
    with common.running([server]):
        load = common.wait_for_quiet(args.max_load, log=common.log)
        report["load_at_start"] = load
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        paths = [
            "/api/complete?" + urlencode({"prefix": text, "kind": kind, "lang": lang}) for text, kind, lang in TYPED
        ]
        first, body = timed_get(connection, paths[0])
        report["first_request_ms"] = first * 1000  # builds the index of the data version
        report["found"] = {
            text: len(timed_get(connection, path)[1]["items"]) for (text, _, _), path in zip(TYPED, paths, strict=True)
        }
        common.log(f"first request (index built): {first * 1000:.1f} ms; data version {body['data_version']}")
        for run in range(args.runs):
            times = [timed_get(connection, path)[0] for path in paths for _ in range(args.requests)]
            p50, p95 = statistics.median(times) * 1000, percentile(times, 0.95) * 1000
            report["runs"].append({"p50_ms": p50, "p95_ms": p95, "requests": len(times)})
            common.log(f"run {run + 1}: p50 {p50:.2f} ms, p95 {p95:.2f} ms over {len(times)} requests")
        connection.close()
    report["median_p50_ms"] = common.median([r["p50_ms"] for r in report["runs"]])
    report["median_p95_ms"] = common.median([r["p95_ms"] for r in report["runs"]])
    lines = [
        "# Completion latency (GET /api/complete)",
        "",
        f"`python -m benchmarks.complete --runs {args.runs} --requests {args.requests}`: one `guian-kg serve "
        f"--workers 1`, one keep-alive connection, one request at a time, {len(TYPED)} typed texts.",
        "",
        f"- first request (builds the index of the data version): {report['first_request_ms']:.1f} ms",
        f"- **p50 {report['median_p50_ms']:.2f} ms**, p95 {report['median_p95_ms']:.2f} ms "
        f"(medians of {args.runs} runs)",
        f"- items found: {', '.join(f'{text!r}: {n}' for text, n in report['found'].items())}",
        f"- 1-minute load average at start: {report['load_at_start']:.2f}",
        "",
        common.machine_markdown(report["machine"]),
    ]
    common.write_report(common.RESULTS / f"{time.strftime('%Y-%m-%d')}-complete.md", "\n".join(lines) + "\n", report)


if __name__ == "__main__":
    main()
