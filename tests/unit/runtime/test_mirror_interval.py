"""The mirror's watcher probes every --remote-poll seconds, or less often when a probe is slow (a large store)."""

from __future__ import annotations

from typing import Any

import pytest

from service.runtime import mirror
from service.runtime.mirror import PROBE_SHARE, RemoteMirror


class _Remote:
    def probe(self) -> str:
        return "probe"


def _mirror_whose_probe_takes(seconds: float, monkeypatch: pytest.MonkeyPatch) -> RemoteMirror:
    watched = RemoteMirror(_Remote(), journal=Any, poll=2.0, recheck=0)  # type: ignore[arg-type]
    clock = iter([100.0, 100.0 + seconds])
    monkeypatch.setattr(mirror.time, "monotonic", lambda: next(clock))
    assert watched._probe() == "probe"
    return watched


def test_a_quick_probe_keeps_the_poll_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _mirror_whose_probe_takes(0.03, monkeypatch).interval() == 2.0


def test_a_slow_probe_stretches_the_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    watched = _mirror_whose_probe_takes(1.5, monkeypatch)
    assert watched.interval() == pytest.approx(1.5 / PROBE_SHARE)
    assert 1.5 / watched.interval() <= PROBE_SHARE  # probing takes at most its share of the store's time
