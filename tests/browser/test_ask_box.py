"""The home page's question box in a real browser: the answer with links and quotes, and "open in editor"."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.browser


class QueryEditor:
    """Every selector of the home page's SPARQL editor and results that this test uses, in one place (the editor
    widget may be replaced: only this class needs to follow it)."""

    def __init__(self, page: Any) -> None:
        self.page = page

    def text(self) -> str:
        return self.page.evaluate("() => window.GKWorkbench.editor.getText()")

    def run(self) -> None:
        self.page.locator("#run").click()
        self.page.wait_for_selector("#results table tbody tr")

    def rows(self) -> int:
        return self.page.locator("#results table tbody tr").count()

    def column(self, variable: str) -> list[str]:
        headers = self.page.locator("#results table thead th").all_inner_texts()
        index = next(i for i, text in enumerate(headers) if text.strip().lstrip("?").split()[0] == variable)
        return self.page.locator(f"#results table tbody tr td:nth-child({index + 1})").all_inner_texts()


def _ask(page: Any, question: str) -> None:
    page.get_by_role("searchbox").fill(question)
    page.locator("#ask-submit").click()
    page.wait_for_selector("#ask-answer .ask-sentences li, #ask-answer .ask-message")


def test_a_question_gets_sentences_links_quotes_and_opens_in_the_editor(
    server: str, page: Any, artifacts: Path
) -> None:
    page.goto(server + "/?lang=zh")
    _ask(page, "哪个科室负责土地管理？")
    answer = page.locator("#ask-answer")
    assert "秘书六科" in answer.locator(".ask-sentences").inner_text()
    link = answer.locator(".ask-sentences a.resource-link[href='/id/section/6']").first
    assert link.inner_text() == "秘书六科"
    quotes = answer.locator(".quotes li.quote").all_inner_texts()
    assert any("土地管理" in q for q in quotes), quotes
    page.screenshot(path=artifacts / "home-ask.png", full_page=True)

    expected = page.request.get(server + "/api/ask", params={"q": "哪个科室负责土地管理？"}).json()
    expected_rows = expected["results"]["results"]["bindings"]
    share_link = answer.locator("#ask-open-editor").get_attribute("href")
    answer.locator("#ask-open-editor").click()
    editor = QueryEditor(page)
    assert editor.text() == expected["sparql_standalone"]
    editor.run()
    assert editor.rows() == len(expected_rows)
    assert sorted(editor.column("notation")) == sorted(r["notation"]["value"] for r in expected_rows)
    assert sorted(editor.column("match")) == sorted(r["match"]["value"] for r in expected_rows)
    # the link is the workbench's share link: opened anywhere, it brings the same query
    other = page.context.new_page()
    other.goto(server + share_link)
    other.wait_for_function("() => window.GKWorkbench && window.GKWorkbench.editor.getText().includes('VALUES')")
    assert QueryEditor(other).text() == expected["sparql_standalone"]


def test_an_inferred_row_links_to_its_explanation_and_suggestions_answer(server: str, page: Any) -> None:
    page.goto(server + "/?lang=en")
    _ask(page, "Who did the source say discussed it?")
    why = page.locator("#ask-answer .quotes li.inferred a").first
    assert why.get_attribute("href").startswith("/api/explain?")
    _ask(page, "what is the weather like")
    assert "outside this graph" in page.locator("#ask-answer .ask-message").inner_text()
    _ask(page, "blah blah")
    page.locator("#ask-answer .suggestions a").first.click()
    page.wait_for_selector("#ask-answer .ask-sentences li")
    assert page.locator("#ask-answer .interpretation").inner_text().startswith("Understood as")
