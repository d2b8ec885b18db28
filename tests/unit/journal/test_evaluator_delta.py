"""The evaluator's delta of a data-only update (INSERT DATA / DELETE DATA, found by the lexer, only the named quads
compared) equals the delta of comparing the whole data before and after, and leaves the replica as it was."""

from __future__ import annotations

import pyoxigraph as ox
import pytest

from service.journal import evaluator
from service.journal.evaluator import Replica

EX = "http://example.org/"
PROLOGUE = f"PREFIX ex: <{EX}> "
UPDATES = [
    "INSERT DATA { GRAPH ex:g { ex:a ex:p 1 } }",  # present already: no change
    "INSERT DATA { GRAPH ex:new { ex:a ex:p 2 } }",  # a new graph
    "DELETE DATA { GRAPH ex:g { ex:a ex:p 1 } }",  # the last quad of its graph
    "DELETE DATA { GRAPH ex:g { ex:absent ex:p 1 } }",
    "INSERT DATA { GRAPH ex:h { ex:b ex:p 3 } } ; DELETE DATA { GRAPH ex:h { ex:b ex:p 3 } }",  # in and out again
    "DELETE DATA { GRAPH ex:g { ex:a ex:p 1 } } ; INSERT DATA { GRAPH ex:g { ex:a ex:p 1 } }",  # out and in again
    "insert data { ex:d ex:p ex:e } ; delete data { GRAPH ex:k { ex:c ex:p 'x'@en } }",
    "INSERT DATA { GRAPH ex:g { ex:a ex:p _:b } }",  # a blank node: the whole-data path
    "INSERT { GRAPH ex:g { ?s ex:q 5 } } WHERE { GRAPH ?g { ?s ?p ?o } }",  # not data-only
]


def _replica() -> Replica:
    replica = Replica.__new__(Replica)
    replica.data = ox.Store()
    replica.data.update(PROLOGUE + "INSERT DATA { GRAPH ex:g { ex:a ex:p 1 } GRAPH ex:k { ex:c ex:p 'x'@en } }")
    return replica


@pytest.mark.parametrize("update", UPDATES)
def test_the_data_only_delta_equals_the_whole_data_delta(update, monkeypatch):
    fast = _replica()
    before = set(fast.data)
    got = fast.evaluate({"kind": "update", "text": PROLOGUE + update}, b"", 1000)
    assert set(fast.data) == before
    assert set(fast.data.named_graphs()) == {ox.NamedNode(EX + "g"), ox.NamedNode(EX + "k")}
    monkeypatch.setattr(evaluator, "_data_quads", lambda text, base: None)
    slow = _replica()
    expected = slow.evaluate({"kind": "update", "text": PROLOGUE + update}, b"", 1000)
    if "_:b" in update:  # fresh blank node labels on each evaluation
        assert len(got["insert"]) == len(expected["insert"]) == 1
    else:
        assert got == expected


def test_only_data_operations_take_the_short_path():
    assert evaluator._data_quads(PROLOGUE + UPDATES[4], None) is not None
    for update in ("CLEAR ALL", UPDATES[7], UPDATES[8], "INSERT DATA { ex:a ex:p 1 } ; DROP ALL", "INSERT DATA"):
        assert evaluator._data_quads(PROLOGUE + update, None) is None
