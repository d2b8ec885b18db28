"""Where one cache miss's time goes, stage by stage, in one web process: the cost around the engine (issue 17).

    python -m benchmarks.stages [--rounds 3] [--label after]

On the cold mix's queries, each made new to the process in every round (an unused prefix declared first, so no
cache holds it), each stage is timed around the function the request path calls, in the order it calls them:

| stage | what is timed |
|---|---|
| parse request | `parse_sparql_request` of a POST with an application/sparql-query body |
| check query | `check_query` (the lexer: form, nesting, SERVICE), the first to lex the text |
| negotiate | `choose_format` over the Accept header |
| key | `job_identity` + `etag_of` (the result cache's key and ETag) |
| engine | `EmbeddedEngine.execute` in this process: what a query worker runs |
| hand-off | `QueryExecutor.run` − engine: reading the FROM clause, pickling, the socket, the worker, the reply |
| whole request | the app's WSGI callable on the POST (Flask, hooks, cache, executor, headers, log, metrics) |
| rest | whole request − the stages above: Flask, hooks, headers, query log, metrics |

Mean microseconds per query (what throughput pays), and the median. The HTTP layers in front (the guard,
granian) are `benchmarks.profile`'s ladder. Run it on an older checkout (same command there) for "before".
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from benchmarks import common
from benchmarks.common import RESULTS, log
from benchmarks.servers import export_dataset
from benchmarks.workloads import Query, cold_mix, load_facts
from service.config import load_settings
from service.data.snapshots import load_snapshot
from service.engines.base import QueryJob
from service.engines.embedded import EmbeddedEngine
from service.engines.factory import engine_for
from service.library.queries import load_library
from service.runtime.executor import QueryExecutor
from service.runtime.result_cache import etag_of, job_identity
from service.sparql.formats import FORM_FORMATS
from service.sparql.lexer import check_query
from service.sparql.protocol import choose_format, parse_sparql_request
from service.web import app as web_app
from service.web.app import create_app

STAGES = ("parse request", "check query", "negotiate", "key", "engine", "hand-off", "whole request", "rest")


def timed(function: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    value = function(*args, **kwargs)
    return value, time.perf_counter() - started


def respond(statuses: list[str], status: str, headers: list, exc_info: Any = None) -> None:
    statuses.append(status)


def environ_of(query: Query) -> dict[str, Any]:
    """The WSGI environ of a POST of `query` as an application/sparql-query body."""
    body = query.text.encode()
    return {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/sparql",
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "CONTENT_TYPE": "application/sparql-query",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "HTTP_ACCEPT": query.accept,
        "HTTP_HOST": "127.0.0.1",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }


def measure(queries: Sequence[Query], rounds: int) -> dict[str, list[float]]:
    """Seconds per query and stage, over `rounds` rounds of new texts."""
    settings = load_settings({"log_level": "warning"})
    snapshot = load_snapshot(settings)
    engine = EmbeddedEngine(snapshot)
    executor = QueryExecutor(settings, engine_for, snapshot)
    app = create_app({"log_level": "warning"})
    if hasattr(web_app, "behind_guard"):  # as `guian-kg serve` runs it (absent from checkouts before issue 17)
        web_app.behind_guard(app)
    wsgi = app.wsgi_app
    times: dict[str, list[float]] = {stage: [] for stage in STAGES}
    try:
        for round_ in range(rounds):
            for i, query in enumerate(queries):
                text = f"PREFIX stage{round_}x{i}: <urn:guian-kg:bench>\n{query.text}"
                body = text.encode()
                parsed, t_parse = timed(
                    parse_sparql_request, "POST", b"", "application/sparql-query", body, settings.max_request_bytes
                )
                form, t_check = timed(check_query, parsed.query, settings.service_allow)
                fmt, t_negotiate = timed(choose_format, FORM_FORMATS[form], query.accept, None)
                job = QueryJob(text, fmt.key, infer=True, max_rows=settings.max_result_rows, form=form)
                started = time.perf_counter()
                identity = job_identity(job)
                if identity is not None:
                    etag_of(snapshot.version, identity)
                t_key = time.perf_counter() - started
                _, t_engine = timed(engine.execute, job)
                _, t_executor = timed(executor.run, job, settings.query_timeout)
                # the whole request, on a text new to the app too
                again = Query(query.label, f"PREFIX whole{round_}x{i}: <urn:guian-kg:bench>\n{query.text}", query.form)
                statuses: list[str] = []
                started = time.perf_counter()
                b"".join(wsgi(environ_of(again), partial(respond, statuses)))
                t_whole = time.perf_counter() - started
                if not statuses or not statuses[0].startswith("200"):
                    raise RuntimeError(f"{query.label}: {statuses}")
                hand_off = max(t_executor - t_engine, 0.0)
                parts = (t_parse, t_check, t_negotiate, t_key, t_engine, hand_off)
                for stage, value in zip(STAGES, (*parts, t_whole, max(t_whole - sum(parts), 0.0)), strict=True):
                    times[stage].append(value)
    finally:
        executor.close()
        app.extensions["guian_kg"].executor.close()
    return times


def markdown(report: dict) -> str:
    lines = [
        f"# Where a cache miss's time goes, by stage — {report['date']} ({report['label']})",
        "",
        f"`python -m benchmarks.stages {report['argv']}`",
        "",
        common.machine_markdown(report["machine"]),
        "",
        f"{report['queries']} cold-mix queries × {report['rounds']} rounds, each text new to the process; one thread.",
        "",
        "| stage | mean µs per query | median µs | share of the whole request |",
        "|---|---:|---:|---:|",
    ]
    whole = report["stages"]["whole request"]["mean_us"]
    for stage, row in report["stages"].items():
        share = f"{row['mean_us'] / whole * 100:.0f} %" if whole and stage != "whole request" else ""
        lines.append(f"| {stage} | {row['mean_us']:.0f} | {row['median_us']:.0f} | {share} |")
    lines += [
        "",
        "Engine and hand-off are timed on separate runs of the same job (the engine in this process, then through "
        "the executor); the whole request runs the query once more in the app, as a new text. "
        "rest = whole − the stages above it.",
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.stages", description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--per-query", type=int, default=10)
    parser.add_argument("--adhoc", type=int, default=50)
    parser.add_argument("--label", default="after", help="names the result file: <date>-stages-<label>.md")
    parser.add_argument("--max-load", type=float, default=1.5)
    args = parser.parse_args(argv)
    load = common.wait_for_quiet(args.max_load, log=log)
    with tempfile.TemporaryDirectory(prefix="guian-kg-stages-") as folder:
        facts = load_facts(export_dataset(Path(folder)))
    queries = cold_mix(load_library(), facts, per_query=args.per_query, adhoc_count=args.adhoc)
    times = measure(queries, args.rounds)
    report = {
        "date": dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "label": args.label,
        "argv": " ".join(sys.argv[1:] if argv is None else argv),
        "machine": {**common.machine(), "load_at_start": load},
        "queries": len(queries),
        "rounds": args.rounds,
        "stages": {
            stage: {
                "mean_us": round(statistics.mean(values) * 1e6, 1),
                "median_us": round(statistics.median(values) * 1e6, 1),
            }
            for stage, values in times.items()
        },
    }
    common.write_report(RESULTS / f"{dt.date.today().isoformat()}-stages-{args.label}.md", markdown(report), report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
