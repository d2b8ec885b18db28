"""Write the golden result of every named query and case: `tests/golden/<name>[.<case>].srj`.

The cases (parameter values, infer=false) are listed in `cases.json`; the empty case name is the query run with
its defaults. Results come from the embedded engine over the real snapshot. A golden is the source of truth once
reviewed by hand against the source document: rerun this only when a query or the data changes on purpose, then
read the diff. Queries with a SERVICE need a second endpoint and are left to tests/e2e/test_federation.py.

    .venv/bin/python tests/golden/regenerate.py [--cache-dir DIR] [NAME ...]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

GOLDEN_DIR = Path(__file__).resolve().parent
CASES_FILE = GOLDEN_DIR / "cases.json"


def load_cases() -> dict[str, dict[str, dict[str, Any]]]:
    """The cases of every query: name -> case name ("" = defaults) -> {"params": {...}, "infer": bool}."""
    return json.loads(CASES_FILE.read_text(encoding="utf-8"))


def golden_path(name: str, case: str) -> Path:
    """The golden file of one query and case."""
    return GOLDEN_DIR / (f"{name}.{case}.srj" if case else f"{name}.srj")


def is_federated(text: str) -> bool:
    """Whether a query calls another endpoint (SERVICE), so that only the e2e federation test can run it."""
    from service.sparql.lexer import service_targets

    return bool(service_targets(text))


def run_case(engine: Any, query: Any, case: dict[str, Any]) -> dict[str, Any]:
    """The SPARQL JSON result of one case of a named query on `engine`."""
    from service.engines.base import QueryJob

    prepared = query.prepare(case.get("params", {}))
    job = QueryJob(prepared.text, "json", infer=case.get("infer", True), bindings=prepared.bindings)
    return json.loads(engine.execute(job).body)


def render(result: dict[str, Any]) -> str:
    """A golden file's text: the result as stable, readable JSON."""
    return json.dumps(result, ensure_ascii=False, indent=1) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Regenerate the goldens of the named queries (all when none is named)."""
    sys.path.insert(0, str(GOLDEN_DIR.parents[1]))
    from service.config import load_settings
    from service.data.snapshots import load_snapshot
    from service.engines.factory import engine_for
    from service.library.queries import load_library

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*")
    parser.add_argument("--cache-dir", help="reasoning cache (default: the usual one)")
    args = parser.parse_args(argv)
    settings = load_settings({"cache_dir": args.cache_dir, "engine": "embedded"}, environ={})
    engine = engine_for(settings, load_snapshot(settings))
    library = load_library()
    cases = load_cases()
    for query in library:
        if args.names and query.name not in args.names:
            continue
        if is_federated(query.text):
            print(f"skip {query.name} (SERVICE: tests/e2e/test_federation.py)")
            continue
        for case_name, case in cases.get(query.name, {}).items():
            result = run_case(engine, query, case)
            path = golden_path(query.name, case_name)
            path.write_text(render(result), encoding="utf-8")
            print(f"{path.relative_to(GOLDEN_DIR)}: {len(result['results']['bindings'])} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
