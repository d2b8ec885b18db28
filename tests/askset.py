"""The question set of /api/ask (tests/ask/questions.json) and how an answer to one of its questions is scored.

Each entry: `q`, the expected named query (`query`, null for a question that must be declined), the expected
`parameters` (those given must match; `lang` is left out), and the expected `answer`: the set of values of one
result column (IRIs by their last segment), over the rows matching `where`, in the question's language.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

QUESTIONS_FILE = Path(__file__).resolve().parent / "ask" / "questions.json"


def questions() -> list[dict[str, Any]]:
    """Every question of the set."""
    return json.loads(QUESTIONS_FILE.read_text(encoding="utf-8"))


def _short(value: str) -> str:
    return value.rstrip("/").rsplit("/", 1)[-1].rsplit("#", 1)[-1] if value.startswith("http") else value


def answer_set(document: Mapping[str, Any], column: str, where: Mapping[str, str] | None = None) -> set[str]:
    """The short values of `column` over the result rows that match `where` (and the question's language)."""
    values = set()
    for row in document["results"]["results"]["bindings"]:
        if "lang" in row and row["lang"]["value"] != document["language"]:
            continue
        if all(_short(row.get(k, {}).get("value", "")) == v for k, v in (where or {}).items()) and column in row:
            values.add(_short(row[column]["value"]))
    return values


def score(entry: Mapping[str, Any], document: Mapping[str, Any]) -> tuple[str, str]:
    """('correct' | 'wrong' | 'declined', why) for one answer document."""
    if not document["understood"]:
        return ("correct" if entry["query"] is None else "declined"), document.get("reason", "")
    if entry["query"] is None:
        return "wrong", f"answered {document['query']} but should decline"
    if document["query"] != entry["query"]:
        return "wrong", f"query {document['query']} instead of {entry['query']}"
    for name, values in entry.get("parameters", {}).items():
        if document["parameters"].get(name) != values:
            return "wrong", f"{name}={document['parameters'].get(name)} instead of {values}"
    expected = entry.get("answer")
    if expected is not None:
        got = answer_set(document, expected["column"], expected.get("where"))
        if got != set(expected["values"]):
            return "wrong", f"answer {sorted(got)} instead of {expected['values']}"
    if not document["answer"]:
        return "wrong", "no sentences"
    return "correct", ""
