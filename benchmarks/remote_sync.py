"""The remote store as the source of truth: what a write costs through us, and how soon a change made behind our
back is served, on Oxigraph server.

    python -m benchmarks.remote_sync [--sizes 2k,100k] [--changes 10] [--poll 2]

Per size (the real data plus generated organisations, benchmarks.orggen, seeded; pushed by `guian-kg push`):

- probe and read: the mirror's probe (one GROUP BY query) and its whole read of the store, timed from this
  process (median of 5 and of 3);
- through us: `guian-kg serve --engine remote --remote-update … --workers 2` — a one-triple INSERT DATA until it
  is acknowledged (its asserted delta and the inferences it changed are then in the store), then an ASK for its
  inference on the next request, through us and on the store itself (both must say true); the DELETE likewise;
- the same writes on the embedded engine (`--store-dir`, same data) in the same run: the ratio remote / embedded;
- behind our back: the same INSERT/DELETE sent to the store's own update endpoint, then an ASK through us every
  20 ms until it answers the change: the delay (the probe runs every `--poll` seconds).

Writes benchmarks/results/remote-sync-<date>[-<label>].json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import requests

from benchmarks.common import REPO, VENV_BIN, free_port, load_average, log, parse_size, size_label
from benchmarks.incremental import TOKEN, ask, dataset_file, percentile, serve_with_store
from service import names
from service.engines.remote_store import RemoteStore

RESULTS = REPO / "benchmarks" / "results"
ID, GK = names.ID, names.GK
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _oxigraph(folder: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = [str(VENV_BIN / "oxigraph"), "serve", "--location", str(folder / "oxigraph"), "--union-default-graph"]
    process = subprocess.Popen(
        [*command, "--bind", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if requests.get(base + "/query", params={"query": "ASK {}"}, timeout=2).ok:
                return process, base
        except requests.RequestException:
            time.sleep(0.1)
    raise RuntimeError("oxigraph serve did not start")


def _change(k: int, op: str) -> tuple[str, str]:
    """A one-triple write (a new project touching land management) and the ASK for its inference."""
    triple = f"<{ID}project/remote-bench-{k}> <{GK}touchesDomain> <{ID}domain/land-management>"
    update = f"{op} DATA {{ GRAPH <{names.GRAPH}curated/remote-bench-{k}> {{ {triple} }} }}"
    return update, f"ASK {{ <{ID}project/remote-bench-{k}> <{GK}coHandledBy> ?s }}"


def _store_ask(query_url: str, query: str) -> bool:
    answer = requests.post(query_url, data={"query": query}, headers={"Accept": "application/sparql-results+json"})
    answer.raise_for_status()
    return answer.json()["boolean"]


def _through(base: str, changes: int, store_query: str | None, offset: int) -> dict[str, list[float]]:
    """Acknowledgement times of inserts and deletes through the service; each checked on the next request."""
    times: dict[str, list[float]] = {"insert": [], "delete": []}
    for k in range(offset, offset + changes):
        for op, expect in (("INSERT", True), ("DELETE", False)):
            update, inferred = _change(k, op)
            started = time.perf_counter()
            requests.post(base + "/update", data={"update": update}, headers=AUTH).raise_for_status()
            times[op.lower()].append(time.perf_counter() - started)
            assert ask(base, inferred) is expect, f"{op}: the next read through us did not see it"
            if store_query is not None:
                assert _store_ask(store_query, inferred) is expect, f"{op}: the store does not hold the inference"
    return times


def _behind(base: str, update_url: str, changes: int, offset: int) -> dict[str, list[float]]:
    """Time from a change acknowledged by the store itself until it is served through us."""
    times: dict[str, list[float]] = {"insert": [], "delete": []}
    for k in range(offset, offset + changes):
        for op, expect in (("INSERT", True), ("DELETE", False)):
            update, inferred = _change(k, op)
            requests.post(
                update_url, data=update.encode(), headers={"Content-Type": "application/sparql-update"}
            ).raise_for_status()
            started = time.perf_counter()
            while ask(base, inferred) is not expect:
                time.sleep(0.02)
            times[op.lower()].append(time.perf_counter() - started)
    return times


def _timed(action: Callable[[], object], runs: int) -> float:
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def _summary(times: list[float]) -> dict[str, float]:
    return {"p50_ms": round(statistics.median(times) * 1000, 1), "p99_ms": round(percentile(times, 0.99) * 1000, 1)}


def _stop(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(60)


def size_part(size: int, changes: int, poll: float, folder: Path) -> dict:
    data = dataset_file(size, folder) if size > 3000 else None
    store_process, store = _oxigraph(folder)
    try:
        push = [sys.executable, "-m", "service.cli", "push", f"--endpoint={store}/update"]
        push += [f"--cache-dir={folder / 'push-cache'}", *([f"--data={data}"] if data else [])]
        subprocess.run(push, cwd=REPO, check=True, capture_output=True)
        remote = RemoteStore(
            store + "/query", store + "/update", names.INFERRED_GRAPH, lambda g: g.startswith(names.GRAPH)
        )
        probe_s, read_s = _timed(remote.probe, 5), _timed(remote.read, 3)
        extra = ["--engine=remote", f"--remote-query={store}/query", f"--remote-update={store}/update"]
        extra.append(f"--remote-poll={poll}")
        (folder / "remote").mkdir()
        process, base = serve_with_store(folder / "remote", None, extra)
        try:
            through = _through(base, changes, store + "/query", 0)
            behind = _behind(base, store + "/update", changes, changes)
        finally:
            _stop(process)
    finally:
        _stop(store_process)
    (folder / "embedded").mkdir()
    process, base = serve_with_store(folder / "embedded", data)
    try:
        embedded = _through(base, changes, None, 0)
    finally:
        _stop(process)
    row = {
        "probe_ms": round(probe_s * 1000, 1),
        "read_whole_store_ms": round(read_s * 1000, 1),
        "through_us_insert_ack": _summary(through["insert"]),
        "through_us_delete_ack": _summary(through["delete"]),
        "embedded_insert_ack": _summary(embedded["insert"]),
        "embedded_delete_ack": _summary(embedded["delete"]),
        "insert_ack_ratio_remote_to_embedded": round(
            statistics.median(through["insert"]) / statistics.median(embedded["insert"]), 2
        ),
        "behind_our_back_insert_visible": _summary(behind["insert"]),
        "behind_our_back_delete_visible": _summary(behind["delete"]),
        "poll_s": poll,
    }
    log(f"remote sync {size_label(size)}: {row}")
    return row


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="2k,100k", help="comma-separated sizes (2k: the shipped data)")
    parser.add_argument("--changes", type=int, default=10, help="inserts and deletes per kind")
    parser.add_argument("--poll", type=float, default=2.0, help="--remote-poll of the served instance")
    parser.add_argument("--label", default="", help="appended to the results file's name")
    args = parser.parse_args(argv)
    results: dict = {"date": dt.date.today().isoformat(), "load_before": load_average(), "sizes": {}}
    for text in filter(None, args.sizes.split(",")):
        size = parse_size(text)
        with tempfile.TemporaryDirectory(prefix="guian-kg-remote-sync-") as tmp:
            results["sizes"][size_label(size)] = size_part(size, args.changes, args.poll, Path(tmp))
    results["load_after"] = load_average()
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"remote-sync-{results['date']}{'-' + args.label if args.label else ''}.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
