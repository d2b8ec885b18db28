"""The query executor's cost per query: a pre-forked worker round trip over the engine alone, median of runs.

    python -m benchmarks.executor [--runs 5] [--queries 300]

Both sides answer the same one-row SELECT over a 300-triple snapshot with the embedded engine: once called in
process (`EmbeddedEngine.execute`), once through `QueryExecutor.run` (pickle, socket, worker, reply). The
difference is what the hand-off to a killable worker costs; it was a timed unit test until the tests stopped
timing things (a loaded machine made it flaky).
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from benchmarks import common
from benchmarks.common import RESULTS, log
from service.config import load_settings
from service.data.snapshots import Snapshot
from service.engines.base import QueryJob
from service.engines.embedded import EmbeddedEngine
from service.engines.factory import engine_for
from service.runtime.executor import QueryExecutor

EX = "http://example.org/"
QUERY = f"SELECT ?o WHERE {{ <{EX}s1> <{EX}next> ?o }}"


def small_snapshot(folder: Path) -> Snapshot:
    """300 triples in 3 graphs, as tests/unit/runtime/test_executor.py builds them."""
    path = folder / "dataset.nq"
    lines = [f"<{EX}s{i}> <{EX}next> <{EX}s{(i + 1) % 300}> <{EX}graph/{i % 3}> ." for i in range(300)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    graphs = tuple(f"{EX}graph/{i}" for i in range(3))
    return Snapshot("bench", path, graphs, graphs[-1], EX)


def mean_seconds(run: Callable[[], object], count: int) -> float:
    for _ in range(20):
        run()  # warm up
    started = time.perf_counter()
    for _ in range(count):
        run()
    return (time.perf_counter() - started) / count


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--queries", type=int, default=300)
    args = parser.parse_args(argv)
    job = QueryJob(QUERY, "json")
    engine_ms, executor_ms = [], []
    with tempfile.TemporaryDirectory() as tmp:
        snapshot = small_snapshot(Path(tmp))
        engine = EmbeddedEngine(snapshot)
        settings = load_settings({"query_workers": "2"}, environ={})
        with QueryExecutor(settings, engine_for, snapshot) as executor:
            for run in range(args.runs):
                engine_ms.append(mean_seconds(lambda: engine.execute(job), args.queries) * 1000)
                executor_ms.append(mean_seconds(lambda: executor.run(job, 5), args.queries) * 1000)
                log(f"run {run + 1}: engine {engine_ms[-1]:.3f} ms, executor {executor_ms[-1]:.3f} ms")
    overhead = [e - g for e, g in zip(executor_ms, engine_ms, strict=True)]
    report = {
        "argv": " ".join(argv or []),
        "date": dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "machine": common.machine(),
        "engine_ms": engine_ms,
        "executor_ms": executor_ms,
        "overhead_ms_median": statistics.median(overhead),
    }
    text = "\n".join(
        [
            "# Query executor overhead",
            "",
            f"`python -m benchmarks.executor {report['argv']}`",
            "",
            "| | median ms per query | runs |",
            "|---|---|---|",
            f"| engine alone | {statistics.median(engine_ms):.3f} | {', '.join(f'{v:.3f}' for v in engine_ms)} |",
            f"| through the executor | {statistics.median(executor_ms):.3f} | "
            f"{', '.join(f'{v:.3f}' for v in executor_ms)} |",
            f"| overhead | {report['overhead_ms_median']:.3f} | |",
            "",
        ]
    )
    common.write_report(RESULTS / f"executor-{dt.date.today().isoformat()}.md", text, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
