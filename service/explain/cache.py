"""Explainers per data version, built once and kept on disk beside the version's closure."""

from __future__ import annotations

import logging
import os
import pickle
import tempfile
import threading
from pathlib import Path
from typing import Any

from service.data.reasoning import REASONER_VERSION
from service.explain.search import Explainer
from service.files import hold_exclusive

log = logging.getLogger("guian_kg.explain")


# Bump when the cached explainer's pickled state changes shape.
CACHE_VERSION = "2"  # 2: the closure comes from the rl engine


# --------------------------------------------------------------------------------------------------------------
# One explainer per data version


class Explainers:
    """The explainer of the data version being served, built once (in memory, and pickled beside the snapshot).

    Each owner (an app, a command) holds its own; a new one reads the pickle a process before it wrote.
    """

    def __init__(self) -> None:
        self._held: tuple[tuple[str, str], Explainer] | None = None
        self._lock = threading.Lock()

    def for_snapshot(self, snapshot: Any) -> Explainer:
        """The explainer of `snapshot`'s data version (one version kept at a time)."""
        key = (snapshot.version, snapshot.base_iri)
        with self._lock:
            if self._held is None or self._held[0] != key:
                self._held = (key, load_or_build(snapshot))
            return self._held[1]


def load_or_build(snapshot: Any) -> Explainer:
    """Read the pickled explainer of this data version, or build and pickle it (once, across processes)."""
    folder = Path(snapshot.nquads).parent
    cache = folder / f"explainer-{CACHE_VERSION}-{REASONER_VERSION}.pickle"
    with open(folder / ".explain-lock", "w") as lock, hold_exclusive(lock, "the explainer cache lock"):
        if cache.exists():
            try:
                with open(cache, "rb") as f:
                    explainer = pickle.load(f)  # our own cache file, written below
                if isinstance(explainer, Explainer):
                    return explainer
            except Exception as exc:  # a stale or torn cache is rebuilt, never fatal
                log.warning("explainer cache %s unreadable (%s): rebuilding", cache, exc)
        explainer = Explainer(snapshot)
        with tempfile.NamedTemporaryFile("wb", dir=folder, delete=False) as tmp:
            pickle.dump(explainer, tmp, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp.name, cache)
        return explainer
