"""`guian-kg bench`: the benchmarks of a checkout, run through the service's own command."""

from __future__ import annotations

import importlib

import pytest

from service.cli import BENCH_SUITES, main


@pytest.mark.parametrize("suite", BENCH_SUITES)
def test_bench_hands_its_arguments_to_the_suite(suite, monkeypatch):
    module = importlib.import_module(f"benchmarks.{suite}")
    seen = []
    monkeypatch.setattr(module, "main", lambda argv: seen.append(argv) or 0)
    assert main(["bench", suite, "--quick", "--runs", "2"]) == 0
    assert seen == [["--quick", "--runs", "2"]]


def test_bench_defaults_to_the_http_comparison(monkeypatch):
    module = importlib.import_module("benchmarks.run")
    seen = []
    monkeypatch.setattr(module, "main", lambda argv: seen.append(argv) or 3)
    assert main(["bench"]) == 3
    assert seen == [[]]


def test_bench_help_is_the_suites_own(capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["bench", "run", "--help"])
    assert stopped.value.code == 0
    assert "python -m benchmarks.run" in capsys.readouterr().out
