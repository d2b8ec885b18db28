"""Write-to-visible latency: a one-triple write until its inference is visible, insert and delete, per size.

    python -m benchmarks.incremental [--sizes 10k,100k] [--changes 50] [--service-sizes 2k,10k]
                                     [--service-changes 10] [--writers 8] [--writer-seconds 15]
                                     [--serve-arg=--OPTION=VALUE ...] [--label NAME]

Two parts, each over the real data plus generated organisations (benchmarks.orggen, seeded) up to the size:

- engine: `service.data.rules.Incremental` in this process. Each change inserts `<new project> gk:touchesDomain
  <a domain>` (which the property chains turn into gk:coHandledBy sections) and then deletes it; the time of each,
  p50/p99, against one full `rules.closure` of the same data (the ratio is full / incremental p50).
- service: `guian-kg serve --workers 2 --store-dir` on a store restored from the same data. The time from sending a
  one-triple INSERT DATA until an ASK for its inference (on a fresh connection) answers true, and for the DELETE
  DATA until it answers false — every read waits for its worker to serve the newest acknowledged version (a
  503 `not-ready`, past the server's wait, is asked again and its time counts). Then
  `--writers` threads send one-triple inserts for `--writer-seconds`: acknowledged writes per second.

Writes benchmarks/results/incremental-<date>.json and .md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pyoxigraph as ox
import requests
from rdflib import Dataset, URIRef

from benchmarks.common import REPO, RESULTS, free_port, log, parse_size, size_label
from benchmarks.orggen import generate
from benchmarks.scale import _count_real_triples
from service.data import rules
from service.resources import source_document

GK = "https://w3id.org/guian-kg/ontology#"
ID = "https://w3id.org/guian-kg/id/"
TOKEN = "incremental-benchmark"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def dataset_file(size: int, folder: Path) -> Path:
    """The real data plus generated organisations up to `size` triples, as N-Quads (what `restore` reads)."""
    generated = folder / f"generated-{size_label(size)}.trig"
    generate(max(size - _count_real_triples(), 0), generated, source_document(), seed=5)
    store = ox.Store()
    store.load(
        path=str(REPO / "ontology" / "guian-kg.ttl"),
        format=ox.RdfFormat.TURTLE,
        to_graph=ox.NamedNode("https://w3id.org/guian-kg/graph/ontology"),
    )
    for path in [*sorted((REPO / "graph_data").glob("*.trig")), generated]:
        store.load(path=str(path), format=ox.RdfFormat.TRIG)
    target = folder / f"data-{size_label(size)}.nq"
    store.dump(str(target), format=ox.RdfFormat.N_QUADS)
    return target


def domains_of(triples: set) -> list:
    return sorted({o for _, p, o in triples if str(p) == GK + "touchesDomain"})


def engine_part(size: int, changes: int, folder: Path) -> dict:
    dataset = Dataset()
    dataset.parse(dataset_file(size, folder), format="nquads")
    triples = {(s, p, o) for s, p, o, _ in dataset.quads()}
    started = time.perf_counter()
    full = rules.closure(triples)
    full_s = time.perf_counter() - started
    closure = rules.Incremental(triples)
    domains, rng = domains_of(triples), random.Random(3)
    inserts, deletes = [], []
    for k in range(changes):
        triple = (URIRef(f"{ID}project/bench-{k}"), URIRef(GK + "touchesDomain"), rng.choice(domains))
        started = time.perf_counter()
        closure.insert([triple])
        inserts.append(time.perf_counter() - started)
        started = time.perf_counter()
        closure.delete([triple])
        deletes.append(time.perf_counter() - started)
    assert set(closure.derivation().triples()) == set(full.triples()), "the maintained closure drifted"
    row = {
        "asserted": len(triples),
        "full_closure_s": round(full_s, 3),
        "insert_p50_ms": round(statistics.median(inserts) * 1000, 2),
        "insert_p99_ms": round(percentile(inserts, 0.99) * 1000, 2),
        "delete_p50_ms": round(statistics.median(deletes) * 1000, 2),
        "delete_p99_ms": round(percentile(deletes, 0.99) * 1000, 2),
        "full_rebuilds": closure.rebuilds - 1,
    }
    row["ratio_full_to_insert_p50"] = round(full_s / statistics.median(inserts))
    row["ratio_full_to_delete_p50"] = round(full_s / statistics.median(deletes))
    log(f"engine {size_label(size)}: {row}")
    return row


def serve_with_store(folder: Path, data: Path | None, extra: Sequence[str] = ()) -> tuple[subprocess.Popen, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GUIAN_KG_")}
    store = ["--store-dir", str(folder / "store"), "--cache-dir", str(folder / "cache")]
    if data is not None:
        subprocess.run(
            [sys.executable, "-m", "service.cli", "restore", str(data), *store], cwd=REPO, env=env, check=True
        )
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "service.cli", "serve", "--host=127.0.0.1", f"--port={port}", "--workers=2"]
    command += ["--threads=8", "--query-workers=1", f"--update-token={TOKEN}", "--query-timeout=120", *store, *extra]
    with open(folder / "server.log", "ab") as out:
        process = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    deadline = time.monotonic() + 1800
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}: see {folder / 'server.log'}")
        try:
            if requests.get(base + "/readyz", timeout=5).status_code == 200:
                return process, base
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise RuntimeError("the server did not get ready")


def ask(base: str, query: str) -> bool:
    """The answer of an ASK; a 503 (the version not built within the server's wait) is asked again, and counts."""
    while True:
        response = requests.get(base + "/sparql", params={"query": query}, timeout=600)
        if response.status_code != 503:
            response.raise_for_status()
            return response.json()["boolean"]
        log(f"503 {response.json().get('code')}: asking again")


def service_part(
    size: int, changes: int, writers: int, writer_seconds: float, folder: Path, extra: Sequence[str] = ()
) -> dict:
    data = dataset_file(size, folder) if size > 3000 else None
    process, base = serve_with_store(folder, data, extra)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    domain = f"{ID}domain/land-management"
    try:
        inserts, deletes = [], []
        for k in range(changes):
            triple = f"<{ID}project/bench-{k}> <{GK}touchesDomain> <{domain}>"
            graph = f"<https://w3id.org/guian-kg/graph/claim/bench-{k}>"
            inferred = f"ASK {{ <{ID}project/bench-{k}> <{GK}coHandledBy> ?s }}"
            for op, expect, times in (("INSERT", True, inserts), ("DELETE", False, deletes)):
                started = time.perf_counter()
                written = requests.post(
                    base + "/update", data={"update": f"{op} DATA {{ GRAPH {graph} {{ {triple} }} }}"}, headers=auth
                )
                written.raise_for_status()
                answer = ask(base, inferred)
                times.append(time.perf_counter() - started)
                assert answer is expect, f"{op}: the next read answered {answer}"
        acknowledged, stop = [0] * writers, threading.Event()

        def writer(n: int) -> None:
            session, k = requests.Session(), 0
            while not stop.is_set():
                update = f"INSERT DATA {{ GRAPH <urn:bench:w{n}> {{ <urn:bench:w{n}:{k}> <urn:p> {k} }} }}"
                if session.post(base + "/update", data={"update": update}, headers=auth, timeout=120).ok:
                    acknowledged[n] += 1
                k += 1

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(writers)]
        began = time.monotonic()
        for thread in threads:
            thread.start()
        time.sleep(writer_seconds)
        stop.set()
        for thread in threads:
            thread.join(300)
        elapsed = time.monotonic() - began
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(60)
    row = {
        "write_to_inference_visible_p50_ms": round(statistics.median(inserts) * 1000),
        "write_to_inference_visible_p99_ms": round(percentile(inserts, 0.99) * 1000),
        "delete_to_retraction_visible_p50_ms": round(statistics.median(deletes) * 1000),
        "delete_to_retraction_visible_p99_ms": round(percentile(deletes, 0.99) * 1000),
        "writers": writers,
        "acknowledged_writes_per_s": round(sum(acknowledged) / elapsed, 1),
    }
    log(f"service {size_label(size)}: {row}")
    return row


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.incremental", description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10k,100k")
    parser.add_argument("--changes", type=int, default=50)
    parser.add_argument("--service-sizes", default="2k,10k")
    parser.add_argument("--service-changes", type=int, default=10)
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--writer-seconds", type=float, default=15.0)
    parser.add_argument(
        "--serve-arg", action="append", default=[], help="an option for `serve`, e.g. --serve-arg=--memory-max-quads=5M"
    )
    parser.add_argument("--label", default="", help="added to the results file's name")
    args = parser.parse_args(argv)
    extra = args.serve_arg
    results: dict = {"date": dt.date.today().isoformat(), "engine": {}, "service": {}}
    with tempfile.TemporaryDirectory() as scratch:
        for size in [parse_size(s) for s in args.sizes.split(",") if s]:
            folder = Path(scratch) / f"engine-{size}"
            folder.mkdir()
            results["engine"][size_label(size)] = engine_part(size, args.changes, folder)
        for size in [parse_size(s) for s in args.service_sizes.split(",") if s]:
            folder = Path(scratch) / f"service-{size}"
            folder.mkdir()
            results["service"][size_label(size)] = service_part(
                size, args.service_changes, args.writers, args.writer_seconds, folder, extra
            )
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"incremental-{results['date']}{'-' + args.label if args.label else ''}.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    log(f"wrote {out}")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
