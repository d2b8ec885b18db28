"""Every named query and case answers its golden result (tests/golden/), on the embedded and the rdflib engine.

Rows compare as a multiset unless the query has ORDER BY. A query without a golden case fails, and so does a
golden file that no case produces. Regenerate with tests/golden/regenerate.py, then review the diff by hand.
"""

from __future__ import annotations

import importlib.util
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from service.engines.base import Engine
from service.library.queries import Library, load_library

GOLDEN_DIR = Path(__file__).resolve().parents[2] / "golden"
XSD_STRING = "http://www.w3.org/2001/XMLSchema#string"


def _regenerate_module() -> Any:
    spec = importlib.util.spec_from_file_location("golden_regenerate", GOLDEN_DIR / "regenerate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


golden = _regenerate_module()
LIBRARY: Library = load_library()
CASES: dict[str, dict[str, dict[str, Any]]] = golden.load_cases()
LOCAL = [q for q in LIBRARY if not golden.is_federated(q.text)]
PARAMS = [(q.name, case) for q in LOCAL for case in CASES.get(q.name, {})]


def _term(term: dict[str, str] | None) -> tuple[str, ...] | None:
    """A result term in one canonical form (a plain literal and an xsd:string one are the same)."""
    if term is None:
        return None
    kind = "literal" if term["type"] == "typed-literal" else term["type"]
    datatype = term.get("datatype", "")
    return (kind, term["value"], term.get("xml:lang", "").lower(), "" if datatype == XSD_STRING else datatype)


def canonical_rows(result: dict[str, Any]) -> list[tuple]:
    """The rows of a SPARQL JSON result, each as a tuple of canonical terms in `head.vars` order."""
    names = result["head"]["vars"]
    return [tuple(_term(row.get(name)) for name in names) for row in result["results"]["bindings"]]


@pytest.fixture(scope="module", params=["embedded", "embedded-on-disk", "rdflib"])
def engine(request: pytest.FixtureRequest, cache_dir: Path) -> Engine:
    """Each local engine in turn, loaded once over the real snapshot (the embedded one in memory and on disk)."""
    from service.config import load_settings
    from service.data.snapshots import load_snapshot
    from service.engines.factory import engine_for

    name, _, where = request.param.partition("-on-")
    overrides = {"cache_dir": str(cache_dir), "engine": name, "memory_max_quads": "0" if where else None}
    settings = load_settings(overrides, environ={})
    snapshot = load_snapshot(settings)
    assert (snapshot.disk_store is not None) == bool(where)
    return engine_for(settings, snapshot)


def test_every_query_has_a_golden_case():
    missing = [
        q.name for q in LIBRARY if not list(GOLDEN_DIR.glob(f"{q.name}.srj")) + list(GOLDEN_DIR.glob(f"{q.name}.*.srj"))
    ]
    assert not missing, f"named queries without a golden result: {missing} (add a case to tests/golden/cases.json)"
    for query in LOCAL:
        assert CASES.get(query.name), f"{query.name} has no case in tests/golden/cases.json"


def test_every_golden_file_belongs_to_a_case():
    expected = {golden.golden_path(name, case).name for name, case in PARAMS}
    federated = {f"{q.name}.srj" for q in LIBRARY if golden.is_federated(q.text)}
    found = {path.name for path in GOLDEN_DIR.glob("*.srj")}
    assert found - federated == expected


@pytest.mark.parametrize(("name", "case"), PARAMS, ids=[f"{n}[{c or 'defaults'}]" for n, c in PARAMS])
def test_golden(engine: Engine, name: str, case: str):
    query = LIBRARY.get(name)
    expected = json.loads(golden.golden_path(name, case).read_text(encoding="utf-8"))
    actual = golden.run_case(engine, query, CASES[name][case])
    assert actual["head"]["vars"] == expected["head"]["vars"]
    mine, theirs = canonical_rows(actual), canonical_rows(expected)
    if query.ordered:
        assert mine == theirs
    else:
        assert Counter(mine) == Counter(theirs)


# --- the answers the issue fixes, read from the goldens themselves ---------------------------------------------


def _column(name: str, case: str, column: str) -> list[str]:
    result = json.loads(golden.golden_path(name, case).read_text(encoding="utf-8"))
    return [row[column]["value"] for row in result["results"]["bindings"] if column in row]


def test_the_flagship_answers():
    assert set(_column("project-co-handling", "", "notation")) == {"5", "6", "7", "8"}
    for words in ("flagship-words-zh", "flagship-words-en"):  # the source's words, and in English
        assert set(_column("co-handling-sections", words, "notation")) == {"5", "6", "7", "8"}
        bases = dict(zip(*(_column("co-handling-sections", words, c) for c in ("notation", "basis")), strict=True))
        assert bases == {"5": "assumption", "6": "inferred", "7": "inferred", "8": "inferred"}
    assert set(_column("co-handling-sections", "", "notation")) == {"6", "7", "8"}
    assert set(_column("co-handling-sections", "short-names", "notation")) == {"6", "7", "8"}
    reasons = dict(
        zip(_column("project-co-handling", "", "notation"), _column("project-co-handling", "", "domain"), strict=True)
    )
    assert reasons["5"].endswith("/domain/major-projects")  # 重大产业项目 ~ 重大项目推进, an assumption
    assert reasons["6"].endswith("/domain/land-management")
    assumed = dict(
        zip(_column("project-co-handling", "", "notation"), _column("project-co-handling", "", "basis"), strict=True)
    )
    assert assumed == {"5": "assumption", "6": "assumption", "7": "inferred", "8": "inferred"}
    assert _column("project-co-handling", "no-infer", "notation") == []


def test_stated_against_inferred():
    """The three layers: named in the source {5, 7, 8}; from the table {7, 8}; through an assumption {5, 6}."""
    layers: dict[str, set[str]] = {}
    for notation, layer in zip(
        _column("stated-vs-inferred", "", "notation"), _column("stated-vs-inferred", "", "layer"), strict=True
    ):
        layers.setdefault(layer, set()).add(notation)
    assert layers == {
        "named-in-source": {"5", "7", "8"},
        "follows-from-table": {"7", "8"},
        "depends-on-assumption": {"5", "6"},
    }
    statuses = dict(
        zip(_column("stated-vs-inferred", "", "notation"), _column("stated-vs-inferred", "", "status"), strict=False)
    )
    assert statuses == {
        "5": "stated-and-inferred",
        "6": "inferred-only",
        "7": "stated-and-inferred",
        "8": "stated-and-inferred",
    }
    assert set(_column("stated-vs-inferred", "no-infer", "notation")) == {"5", "7", "8"}


BASES = {"source", "inferred", "assumption"}


@pytest.mark.parametrize(("name", "case"), PARAMS, ids=[f"{n}[{c or 'defaults'}]" for n, c in PARAMS])
def test_every_row_that_rests_on_reasoning_says_so(name: str, case: str):
    """A query that reads what the reasoner infers (gk:coHandledBy) or an assumption's axioms marks every row with its
    basis, and a row resting on an assumption names it: no golden passes an inference off as a fact."""
    query = LIBRARY.get(name)
    result = json.loads(golden.golden_path(name, case).read_text(encoding="utf-8"))
    reads_inference = "gk:coHandledBy" in query.text or "owl:hasValue" in query.text
    if not reads_inference:
        return
    assert "basis" in result["head"]["vars"], f"{name} reads inferences but has no basis column"
    for row in result["results"]["bindings"]:
        basis = row["basis"]["value"]
        assert basis in BASES, (name, case, row)
        assert (basis == "assumption") == ("assumption" in row), (name, case, row)
