"""`guian-kg ask "…"`: the same answer as GET /api/ask, from the local data, printed as sentences (or JSON)."""

from __future__ import annotations

import json
from typing import Any

from service.ask import Asker
from service.config import Settings
from service.data.snapshots import load_snapshot
from service.engines.base import QueryJob
from service.engines.factory import engine_for
from service.library.queries import served_library


def render_text(document: dict[str, Any]) -> str:
    """The answer as a terminal shows it: sentences, then the named query and parameters, or the suggestions."""
    if not document["understood"]:
        lines = [document["message"], *(f"  - {s}" for s in document["suggestions"])]
        return "\n".join(lines)
    params = ", ".join(f"{k}={'|'.join(v)}" for k, v in document["parameters"].items())
    return "\n".join([*document["answer"], f"({document['query']}: {params})"])


def ask_cli(question: str, settings: Settings, *, as_json: bool = False) -> int:
    """Answer one question from the local data; 0 when understood, 1 when declined."""
    snapshot = load_snapshot(settings)
    engine = engine_for(settings, snapshot)
    library = served_library(settings)

    def run(text: str, bindings: tuple[tuple[str, str], ...]) -> dict[str, Any]:
        job = QueryJob(text, "json", infer=settings.infer, max_rows=settings.max_result_rows, bindings=bindings)
        return json.loads(engine.execute(job).body)

    document = Asker(library, settings.base_iri).ask(question, run, snapshot.version)
    print(json.dumps(document, ensure_ascii=False, indent=1) if as_json else render_text(document))
    return 0 if document["understood"] else 1
