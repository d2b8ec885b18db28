"""Fuzzing /api/ask: schemathesis from the OpenAPI document, and random text (any script, any length) as
questions — never a 5xx, every answer either the answer document or a canonical problem."""

from __future__ import annotations

import os
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

EXAMPLES = int(os.environ.get("KG_FUZZ_EXAMPLES", "100"))
PROBLEM_KEYS = {"type", "title", "status", "detail", "code"}


def test_schemathesis_on_ask_gives_no_server_error(_shared_apps):
    schemathesis = pytest.importorskip("schemathesis")
    from schemathesis import GenerationMode
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", _shared_apps["embedded"])
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
    statuses = []
    operations = [r.ok() for r in schema.get_all_operations() if r.ok().path == "/api/ask"]
    assert {op.method.upper() for op in operations} == {"GET", "POST"}
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=max(EXAMPLES // 4, 10),
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def run(case) -> None:
                response = case.call()
                statuses.append(response.status_code)
                case.validate_response(response, checks=checks)

            run()
    assert statuses and all(status < 500 for status in statuses)
    assert 200 in statuses and 400 in statuses


WORDS = st.sampled_from(
    ["哪个", "科室", "负责", "土地", "秘书五科", "第十科", "section", "5", "joint meeting", "环保", "民生", "?", "，",
     "which", "handles", "how often", "項目", "ＳＥＣＴＩＯＮ", "\u0000", "\ud800", "%", "<script>", "SELECT * {"]
)  # fmt: skip


@given(
    question=st.one_of(
        st.text(min_size=1, max_size=600),
        st.lists(WORDS, min_size=1, max_size=40).map(" ".join),
        st.lists(WORDS, min_size=1, max_size=40).map("".join),
    )
)
@settings(max_examples=EXAMPLES, deadline=10_000, database=None, suppress_health_check=list(HealthCheck))
def test_random_questions_never_break_it(_shared_apps, question):
    client = _shared_apps["embedded"].test_client()
    # surrogatepass: a lone surrogate arrives as the bytes a broken client would send (not UTF-8: a 400)
    body = urlencode({"q": question}, encoding="utf-8", errors="surrogatepass")
    response = client.post("/api/ask", data=body, content_type="application/x-www-form-urlencoded")
    assert response.status_code < 500, response.get_data(as_text=True)[:300]
    body = response.json
    if response.status_code == 200:
        question.encode("utf-8")  # only a question UTF-8 can carry is answered (else: 400 bad-request)
        assert body["understood"] in (True, False) and body["question"] == question
        if body["understood"]:
            assert len(body["basis"]) == len(body["results"]["results"]["bindings"])
        else:
            assert len(body["suggestions"]) <= 3
    else:
        assert response.mimetype == "application/problem+json" and set(body) >= PROBLEM_KEYS
