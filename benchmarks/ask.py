"""Accuracy and latency of /api/ask over the question set (tests/ask/questions.json).

    python -m benchmarks.ask [--output benchmarks/results/ask-<date>.md]

Builds the app in-process (the embedded engine, a warm reasoning cache), asks every question once to warm the
per-version lexicon and the result cache, then times each question over `--runs` rounds through the Flask test
client (the whole request: parsing, understanding, the named query on a query worker or from the result cache,
provenance, JSON); each question's first ask is reported too.
Reports answered correctly / answered wrongly / declined, for the answerable and the unanswerable questions, and
the latency per question (median of its rounds; p50 and p90 over questions).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import date
from pathlib import Path

from benchmarks.common import REPO, RESULTS, write_report
from service.web.app import create_app

sys.path.insert(0, str(REPO / "tests"))
from askset import questions, score


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="timed rounds per question (default 5)")
    parser.add_argument("--cache-dir", default=str(Path(tempfile.gettempdir()) / "guian-kg-bench-ask"))
    parser.add_argument("--output", type=Path, default=RESULTS / f"ask-{date.today().isoformat()}.md")
    args = parser.parse_args(argv)

    app = create_app({"cache_dir": args.cache_dir})
    client = app.test_client()
    entries = questions()
    client.get("/api/ask", query_string={"q": "hello"})  # reads the labels of this data version once
    outcomes: list[tuple[dict, str, str]] = []
    first: list[float] = []  # each question's first ask: its named query not yet in the result cache
    for entry in entries:
        started = time.perf_counter()
        document = client.get("/api/ask", query_string={"q": entry["q"]}).get_json()
        first.append((time.perf_counter() - started) * 1000)
        outcomes.append((entry, *score(entry, document)))
    latencies: list[float] = []
    for entry in entries:
        times = []
        for _ in range(args.runs):
            started = time.perf_counter()
            client.get("/api/ask", query_string={"q": entry["q"]})
            times.append((time.perf_counter() - started) * 1000)
        latencies.append(statistics.median(times))
    app.extensions["guian_kg"].executor.close()

    answerable = [o for o in outcomes if o[0]["query"] is not None]
    unanswerable = [o for o in outcomes if o[0]["query"] is None]
    a, u = Counter(o[1] for o in answerable), Counter(o[1] for o in unanswerable)
    total = len(outcomes)
    wrong = a["wrong"] + u["wrong"]
    langs = Counter("zh" if any("\u4e00" <= c <= "\u9fff" for c in e["q"]) else "en" for e in entries)
    p50 = statistics.median(latencies)
    p90 = statistics.quantiles(latencies, n=10)[-1]
    lines = [
        f"# /api/ask over the question set — {date.today().isoformat()}",
        "",
        f"{total} questions ({langs['zh']} zh, {langs['en']} en): {len(answerable)} answerable, "
        f"{len(unanswerable)} to be declined. `python -m benchmarks.ask --runs {args.runs}`.",
        "",
        "| questions | answered correctly | answered wrongly | declined |",
        "|---|---:|---:|---:|",
        f"| answerable ({len(answerable)}) | {a['correct']} ({a['correct'] / len(answerable):.1%}) "
        f"| {a['wrong']} | {a['declined']} |",
        f"| unanswerable ({len(unanswerable)}) | — | {u['wrong']} | {u['correct']} (correctly) |",
        f"| all ({total}) | {a['correct']} | {wrong} ({wrong / total:.1%}) | {a['declined'] + u['correct']} |",
        "",
        f"Latency per question (median of {args.runs} rounds, in-process Flask test client, embedded engine): "
        f"p50 {p50:.1f} ms, p90 {p90:.1f} ms, max {max(latencies):.1f} ms (the named queries' answers kept by the "
        f"result cache); each question's first ask: p50 {statistics.median(first):.1f} ms, "
        f"max {max(first):.1f} ms.",
        "",
    ]
    held = [o for o in outcomes if o[0].get("set") == "held-out"]
    if held:
        h = Counter(o[1] for o in held if o[0]["query"] is not None)
        hu = Counter(o[1] for o in held if o[0]["query"] is None)
        lines += [
            f'Of these, {len(held)} were written after the matcher was tuned (`"set": "held-out"`): answerable '
            f"{h['correct']} correct, {h['wrong']} wrong, {h['declined']} declined; unanswerable {hu['correct']} "
            f"declined, {hu['wrong']} answered.",
            "",
        ]
    misses = [o for o in outcomes if o[1] != "correct"]
    if misses:
        lines += ["Not answered correctly:", ""] + [f"- {o[1]}: {o[0]['q']} — {o[2]}" for o in misses] + [""]
    report = {
        "questions": total,
        "answerable": dict(a),
        "unanswerable": dict(u),
        "latency_ms": {"p50": p50, "p90": p90, "max": max(latencies), "first_p50": statistics.median(first)},
        "misses": [{"q": o[0]["q"], "outcome": o[1], "why": o[2]} for o in misses],
    }
    write_report(args.output, "\n".join(lines), report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
