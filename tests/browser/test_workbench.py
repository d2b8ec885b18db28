"""The analyst's workbench in a real browser: completion, errors while typing, share links, history, charts."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

pytestmark = pytest.mark.browser

SECTIONS_PER_DOMAIN = """PREFIX gk: <https://w3id.org/guian-kg/ontology#>
PREFIX skos: <http://www.w3.org/2004/02/skos/core#>
SELECT ?section (COUNT(?domain) AS ?domains) WHERE {
  ?section a gk:SecretarialSection ; gk:handlesDomain ?domain .
}
GROUP BY ?section
"""


def editor_text(page: Any) -> str:
    return page.evaluate("() => window.GKWorkbench.editor.getText()")


def set_text(page: Any, text: str) -> None:
    page.evaluate("text => window.GKWorkbench.editor.setText(text)", text)


def type_at_end(page: Any, text: str) -> None:
    """Put the caret at the end of the editor's text and type, as a person would."""
    page.locator("#query").click()
    page.keyboard.press("Control+End")
    page.keyboard.type(text, delay=15)


def test_completion_of_a_property_shows_its_labels(server: str, page: Any, artifacts: Path) -> None:
    page.goto(server + "/?lang=en")
    set_text(page, "PREFIX gk: <https://w3id.org/guian-kg/ontology#>\nSELECT * WHERE {\n  ?s ")
    type_at_end(page, "gk:handl")
    options = page.locator(".cm-tooltip-autocomplete li")
    options.first.wait_for()
    assert options.first.locator(".cm-completionLabel").inner_text() == "gk:handlesDomain"
    page.locator(".gk-info").wait_for()  # the hover text: both labels, the definition, the IRI
    info = page.locator(".gk-info").inner_text()
    assert "https://w3id.org/guian-kg/ontology#handlesDomain" in info
    assert re.search(r"[\u4e00-\u9fff]", info), info  # its Chinese label
    page.screenshot(path=artifacts / "workbench-complete-property.png")
    page.keyboard.press("Enter")
    assert editor_text(page).rstrip().endswith("?s gk:handlesDomain")


def test_a_resource_completes_from_its_chinese_label(server: str, page: Any, artifacts: Path) -> None:
    page.goto(server + "/?lang=zh")
    set_text(page, "SELECT * WHERE {\n  ")
    type_at_end(page, "秘书六科")
    option = page.locator(".cm-tooltip-autocomplete li").first
    option.wait_for()
    assert option.locator(".cm-completionLabel").inner_text() == "id:section/6"
    assert option.locator(".cm-completionDetail").inner_text() == "秘书六科"
    page.screenshot(path=artifacts / "workbench-complete-resource-zh.png")
    page.keyboard.press("Enter")
    text = editor_text(page)
    # The prefix the completion uses is declared at the top when the query did not declare it.
    assert text.startswith("PREFIX id: <https://w3id.org/guian-kg/id/>\n"), text
    assert text.rstrip().endswith("id:section/6")
    assert "秘书六科" not in text


def test_a_syntax_error_shows_while_typing_in_the_pages_language(server: str, page: Any, artifacts: Path) -> None:
    page.goto(server + "/?lang=zh")
    set_text(page, "SELECT ?s WHERE {\n  ?s ?p ?o .\n")
    type_at_end(page, "  FILTR(?o)\n}")
    error = page.locator("#query-error")
    error.wait_for(state="visible")  # no Run: the check ran while typing
    assert error.get_attribute("data-source") == "lint"
    assert error.get_attribute("data-line") == "3"
    assert re.match(r"第 3 行，第 \d+ 列 — SPARQL 语法错误", error.inner_text()), error.inner_text()
    page.locator(".cm-lintRange-error").first.wait_for()  # the editor marks the range (it may lag the message)
    assert page.locator(".cm-lintRange-error").count() == 1
    assert page.locator("#results table").count() == 0  # nothing ran
    page.screenshot(path=artifacts / "workbench-error-while-typing-zh.png")
    # Fixing it clears the message, still without running.
    page.keyboard.press("Control+Home")
    set_text(page, "SELECT ?s WHERE {\n  ?s ?p ?o .\n  FILTER(?o)\n}")
    error.wait_for(state="hidden")
    assert page.locator(".cm-lintRange-error").count() == 0


def test_a_share_link_reopens_query_inference_and_language(server: str, context: Any, page: Any) -> None:
    page.goto(server + "/?lang=zh")
    query = (
        "SELECT ?label WHERE { ?s <http://www.w3.org/2004/02/skos/core#prefLabel> ?label "
        'FILTER(lang(?label) = "zh") } LIMIT 3'
    )
    set_text(page, query)
    page.get_by_label("包含推理得出的陈述", exact=False).uncheck()
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("#results table tbody tr")
    link = page.locator("#share-link").input_value()
    assert link == page.url  # the address bar holds the link too
    assert urlsplit(link).hostname == "127.0.0.1"

    other = context.new_page()
    other.goto(link)
    other.wait_for_function("() => window.GKWorkbench")
    assert other.evaluate("() => window.GKWorkbench.editor.getText()") == query
    assert other.locator("#infer").is_checked() is False
    assert other.locator("html").get_attribute("lang") == "zh-Hans"
    other.close()


def test_history_and_tabs_survive_a_reload(server: str, page: Any, artifacts: Path) -> None:
    page.goto(server + "/?lang=en")
    first = "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }"
    set_text(page, first)
    page.get_by_role("button", name="Run", exact=True).click()
    page.wait_for_selector("#results table tbody tr")
    page.get_by_role("button", name="New tab").click()
    second = "ASK { ?s ?p ?o }"
    set_text(page, second)
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("#results p.boolean")

    page.goto(server + "/?lang=en")
    page.locator("#history summary").click()
    items = page.locator("#history-list .history-item")
    assert items.count() >= 2
    assert items.nth(0).get_attribute("title") == second
    assert items.nth(1).get_attribute("title") == first
    tabs = page.get_by_role("tab")
    assert tabs.count() == 2
    assert tabs.nth(1).get_attribute("aria-selected") == "true"
    assert editor_text(page) == second
    tabs.nth(0).click()
    assert editor_text(page) == first
    page.screenshot(path=artifacts / "workbench-history.png", full_page=False)
    # An item of the history goes back into the editor, by keyboard.
    items.nth(0).focus()
    page.keyboard.press("Enter")
    assert editor_text(page) == second


def test_a_group_by_count_draws_a_chart_with_a_download(server: str, page: Any, artifacts: Path) -> None:
    page.goto(server + "/?lang=zh")
    set_text(page, SECTIONS_PER_DOMAIN)
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("#results table tbody tr")
    chart = page.locator("#chart svg.bar-chart")
    chart.wait_for()
    assert chart.locator("g.bar").count() == 9
    # Bars are named by the sections' labels once they have arrived (the page's language).
    page.wait_for_function(
        "() => [...document.querySelectorAll('#chart g.bar')].some(g => g.dataset.name.startsWith('秘书'))"
    )
    values = [float(v) for v in chart.locator("g.bar").evaluate_all("gs => gs.map(g => g.dataset.value)")]
    assert values == sorted(values, reverse=True) and values[0] >= 1
    with page.expect_download() as download:
        page.locator("#chart a.chart-download").click()
    saved = artifacts / "workbench-chart.svg"
    download.value.save_as(saved)
    assert saved.read_text(encoding="utf-8").startswith("<svg")
    page.locator("#chart").screenshot(path=artifacts / "workbench-chart-zh.png")
    page.screenshot(path=artifacts / "workbench-chart-page-zh.png", full_page=True)


def test_large_results_are_paged_not_all_in_the_dom(server: str, page: Any) -> None:
    page.goto(server + "/?lang=en")
    set_text(page, "SELECT ?s ?p ?o WHERE { ?s ?p ?o } LIMIT 1500")
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("#results table tbody tr")
    assert page.locator("#results tbody tr").count() == 100
    assert page.locator("#results .page-rows").inner_text() == "Rows 1–100 of 1500"
    page.get_by_role("button", name="Next page").click()
    assert page.locator("#results .page-rows").inner_text() == "Rows 101–200 of 1500"
    assert page.locator("#results tbody tr").count() == 100


def test_open_in_editor_from_a_resource_page(server: str, page: Any) -> None:
    page.goto(server + "/id/section/6?lang=en")
    page.get_by_role("link", name="Open in editor").click()
    page.wait_for_selector(".gk-editor")
    assert "<https://w3id.org/guian-kg/id/section/6> ?property ?value" in editor_text(page)
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("#results table tbody tr")
    assert page.locator("#results tbody tr").count() > 5


def test_open_in_editor_from_a_named_query_gets_a_tab_of_its_own(server: str, page: Any) -> None:
    page.goto(server + "/?lang=en")
    set_text(page, "ASK { ?s ?p ?o }")  # the work in the first tab is kept
    page.goto(server + "/?lang=en&example=project-co-handling")
    tabs = page.get_by_role("tab")
    tabs.nth(1).wait_for()
    assert tabs.count() == 2 and tabs.nth(1).get_attribute("aria-selected") == "true"
    assert "coHandledBy" in editor_text(page)
    assert tabs.nth(1).inner_text() != "Query 2"  # named after the query
    tabs.nth(0).click()
    assert editor_text(page) == "ASK { ?s ?p ?o }"
    page.reload()  # the same link again: the same tab, not a third
    assert page.get_by_role("tab").count() == 2


def test_the_workbench_is_keyboard_usable_and_stays_on_loopback(server: str, page: Any, request_log) -> None:
    page.goto(server + "/?lang=en")
    # From the editor, Tab reaches the controls; Ctrl+Enter runs from the editor.
    page.locator("#query").focus()
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("#results table tbody tr")
    page.locator("#query").focus()
    page.keyboard.press("Tab")
    reached = []
    for _ in range(12):
        reached.append(page.evaluate("document.activeElement.id || document.activeElement.className"))
        page.keyboard.press("Tab")
    assert {"infer", "run", "share"} <= set(reached), reached
    assert any(
        url.startswith(server + "/api/complete") or url.startswith(server + "/api/lint") for url in request_log.urls
    )
    assert request_log.urls and all(urlsplit(url).hostname == "127.0.0.1" for url in request_log.urls if "://" in url)
    assert not request_log.console_errors, request_log.console_errors
