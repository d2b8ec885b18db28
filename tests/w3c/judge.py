"""How one W3C test's outcome is judged against the checked-in expected failures (tests/w3c/expected_failures.json).

A failure listed there (with its reason) is an expected failure; an unlisted failure fails the run, and so does
a listed test that passes (remove it from the list).
"""

from __future__ import annotations

import functools
from collections import defaultdict

import pytest
from w3c.suite import Case, Expected, expected_failures

# group -> target -> outcome -> count, for the conformance table (see conftest.pytest_sessionfinish)
SUMMARY: dict[str, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(int)))


# target -> test id -> what failed (the answer measured), for keeping expected_failures.json's `measured` true
# after a change (W3C_SUMMARY)
FAILURES: dict[str, dict[str, str]] = defaultdict(dict)


def record(engine: str, group: str, outcome: str) -> None:
    """Count one test's outcome (pass / expected failure / failure) for the summary table."""
    SUMMARY[group][engine]["tests"] += 1
    SUMMARY[group][engine][outcome] += 1


@functools.cache
def _expected() -> dict[str, dict[str, Expected]]:
    return expected_failures()


def judge(engine: str, case: Case, problem: str | None) -> None:
    """Pass, xfail or fail the current test for `problem` (None: the test passed)."""
    expected = _expected().get(engine, {}).get(case.id)
    if problem is None:
        if expected is not None:
            record(engine, case.group, "unexpected pass")
            pytest.fail(f"{case.id} passes on {engine}: remove it from expected_failures.json ({expected.cause})")
        record(engine, case.group, "pass")
        return
    FAILURES[engine][case.id] = problem[:200]
    if expected is not None:
        record(engine, case.group, "expected failure")
        pytest.xfail(f"{expected.cause}: {expected.why} [measured now: {problem[:300]}]")
    record(engine, case.group, "failure")
    pytest.fail(f"{case.id} on {engine}: {problem}")
