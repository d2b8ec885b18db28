"""Reasoning alone at 10k, 100k, 1M triples: the service's `reason` in fresh processes, median of several runs.

    python -m benchmarks.reasoner [--sizes 10k,100k,1m] [--runs 3] [--reference-max 10k]

Each size is the real data plus generated organisations (benchmarks.orggen, seeded), parsed by rdflib as the
service parses it; the time measured is `service.data.sources.reason` with the default reasoner (`rl`): the rdflib
Dataset
in, the kept inferences out. Up to --reference-max triples owlrl also runs, once, on the same parse, and the two
closures are compared triple by triple (blank nodes included). Quicker than `benchmarks.scale`, which also loads,
serves and queries each size.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from benchmarks import common
from benchmarks.common import REPO, RESULTS, log, parse_size, size_label
from benchmarks.orggen import generate
from benchmarks.scale import _count_real_triples, run_child
from service.resources import source_document

CHILD = """
import json, resource, time
from service.data.sources import asserted_dataset, reason
dataset = asserted_dataset()
dataset.parse(GENERATED, format="trig")
started = time.perf_counter()
closure = reason(dataset)
seconds = time.perf_counter() - started
out = {"seconds": seconds, "reasoner": closure.reasoner, "asserted": closure.asserted_triples,
       "kept": len(closure.triples), "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}
if REFERENCE:
    started = time.perf_counter()
    reference = reason(dataset, "owlrl")
    out.update(owlrl_s=time.perf_counter() - started, equal=set(reference.triples) == set(closure.triples),
               owlrl_kept=len(reference.triples))
print(json.dumps(out))
"""


def measure(size: int, runs: int, reference: bool, folder: Path) -> dict:
    """`runs` fresh processes reasoning over the real data + generated organisations up to `size` triples."""
    generated = folder / f"generated-{size_label(size)}.trig"
    counts = generate(max(size - _count_real_triples(), 0), generated, source_document())
    code = CHILD.replace("GENERATED", repr(str(generated)))
    results = []
    for run in range(runs):
        results.append(run_child(REPO, code.replace("REFERENCE", repr(reference and run == 0)), timeout=7200))
        log(f"{size_label(size)} run {run + 1}: {results[-1]['seconds']:.2f} s ({results[-1]['reasoner']})")
    times = [r["seconds"] for r in results]
    row = {
        "label": size_label(size),
        "organisations": counts["organisations"],
        "asserted": results[0]["asserted"],
        "kept": results[0]["kept"],
        "reasoners": sorted({r["reasoner"] for r in results}),
        "seconds": times,
        "median_s": statistics.median(times),
        "peak_rss": max(r["peak_rss"] for r in results),
    }
    if reference:
        row.update({k: results[0][k] for k in ("owlrl_s", "equal", "owlrl_kept")})
    return row


def markdown(report: dict) -> str:
    lines = [
        f"# Reasoning alone — {report['date']}",
        "",
        f"`python -m benchmarks.reasoner {report['argv']}`",
        "",
        "## Machine",
        "",
        common.machine_markdown(report["machine"]),
        "",
        "## Results",
        "",
        "| size | triples (asserted) | orgs | rl: median (runs) | inferred kept | peak RSS | owlrl (once) | "
        "closure = owlrl's |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in report["rows"]:
        runs = ", ".join(f"{t:.2f}" for t in r["seconds"])
        fell_back = "" if r["reasoners"] == ["rl"] else f" ({' / '.join(r['reasoners'])})"
        owlrl = f"{r['owlrl_s']:.1f} s ({r['owlrl_s'] / r['median_s']:.0f}× rl)" if "owlrl_s" in r else "not run"
        same = ("yes" if r["equal"] else "NO") if "equal" in r else "–"
        lines.append(
            f"| {r['label']} | {r['asserted']:,} | {r['organisations']} | {r['median_s']:.2f} s ({runs}){fell_back} | "
            f"{r['kept']:,} | {common.fmt_bytes(r['peak_rss'])} | {owlrl} | {same} |"
        )
    lines += [
        "",
        "The time is `service.data.sources.reason(dataset)` in a fresh process: the parsed rdflib Dataset in, the kept "
        "inferences out (rdflib parsing is not included; `benchmarks.scale` reports it). Target: 100k triples "
        "≤ 10 s.",
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.reasoner", description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10k,100k,1m")
    parser.add_argument("--runs", type=int, default=3, help="fresh processes per size (the median is reported)")
    parser.add_argument("--reference-max", type=parse_size, default=parse_size("10k"), help="largest owlrl size")
    parser.add_argument("--max-load", type=float, default=1.5)
    args = parser.parse_args(argv)
    report: dict = {
        "date": dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "argv": " ".join(sys.argv[1:] if argv is None else argv),
        "machine": common.machine(),
        "rows": [],
    }
    with tempfile.TemporaryDirectory(prefix="guian-kg-reasoner-") as folder:
        for size in (parse_size(s) for s in args.sizes.split(",") if s.strip()):
            common.wait_for_quiet(args.max_load, log=log)
            report["rows"].append(measure(size, args.runs, size <= args.reference_max, Path(folder)))
    common.write_report(RESULTS / f"reasoner-{dt.date.today().isoformat()}.md", markdown(report), report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
