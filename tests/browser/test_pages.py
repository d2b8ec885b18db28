"""The web front end in a real browser: query page, examples, errors, resource pages, pictures, docs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.browser

FLAGSHIP = "project-co-handling"


def _table_column(page: Any, variable: str) -> list[str]:
    """The texts of one column of the results table, found by its ?variable header."""
    headers = page.locator("#results table thead th").all_inner_texts()
    index = next(i for i, text in enumerate(headers) if text.strip().lstrip("?").split()[0] == variable)
    return page.locator(f"#results table tbody tr td:nth-child({index + 1})").all_inner_texts()


def _editor_text(page: Any) -> str:
    """The query in the editor (CodeMirror: its text is not an input's value)."""
    return page.evaluate("() => window.GKWorkbench.editor.getText()")


def test_flagship_example_lists_sections_6_7_8(server: str, page: Any, artifacts: Path, request_log) -> None:
    page.goto(server + "/")
    page.get_by_label("Example query").select_option(FLAGSHIP)
    assert "coHandledBy" in _editor_text(page)
    assert page.get_by_label("project", exact=False).first.is_visible()
    page.get_by_role("button", name="Run example").click()
    page.wait_for_selector("#results table tbody tr")
    notations = set(_table_column(page, "notation"))
    assert {"6", "7", "8"} <= notations, notations
    # IRIs are links to their pages, shown by label once the labels have arrived.
    section_link = page.locator("#results a.iri[href^='/id/section/']").first
    page.wait_for_function(
        "() => [...document.querySelectorAll('#results a.iri')].some(a => a.textContent.startsWith('Secretarial'))"
    )
    assert section_link.get_attribute("title").startswith("https://w3id.org/guian-kg/id/section/")
    downloads = page.locator("#downloads a")
    assert {downloads.nth(i).get_attribute("data-format") for i in range(downloads.count())} >= {"csv", "json"}
    page.screenshot(path=artifacts / "home-flagship.png", full_page=True)
    assert not request_log.console_errors, request_log.console_errors


def test_syntax_error_is_shown_where_it_is(server: str, page: Any, artifacts: Path) -> None:
    page.goto(server + "/")
    editor = page.get_by_label("SPARQL query", exact=True)
    editor.fill("SELECT ?s WHERE {\n  ?s ?p ?o .\n  FILTR(?o)\n}\n")
    editor.press("Control+Enter")
    error = page.locator("#query-error")
    error.wait_for(state="visible")
    assert error.get_attribute("data-line") == "3"
    assert re.search(r"Line 3, column \d+", error.inner_text())
    assert editor.get_attribute("aria-invalid") == "true"
    mark = page.locator(".cm-lintRange-error")
    assert mark.count() == 1
    # The caret is put where the error is.
    caret = page.evaluate(
        "() => { const s = window.GKWorkbench.editor.view.state; return s.doc.lineAt(s.selection.main.head).number; }"
    )
    assert caret == 3
    page.screenshot(path=artifacts / "home-syntax-error.png", full_page=False)
    # Fixing the text clears the mark; the corrected query runs.
    editor.fill("SELECT ?s WHERE {\n  ?s ?p ?o .\n  FILTER(?o)\n} LIMIT 3\n")
    page.locator(".cm-lintRange-error").wait_for(state="detached")
    editor.press("Control+Enter")
    page.wait_for_selector("#results table tbody tr")
    assert error.is_hidden()


def test_editor_is_keyboard_usable_and_table_sorts(server: str, page: Any) -> None:
    page.goto(server + "/")
    editor = page.locator("#query")
    assert page.locator("label[for=query]").inner_text() == "SPARQL query"
    assert "PREFIX gk:" in _editor_text(page)  # prefixes pre-filled
    # highlighted: keywords get a colour of their own
    keyword = page.locator("#query .cm-line").first.locator("span").first
    assert keyword.inner_text() == "PREFIX" and keyword.evaluate("el => getComputedStyle(el).color") != "rgb(0, 0, 0)"
    editor.focus()
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("#results table tbody tr")
    assert page.locator("#results table tbody tr").count() == 9
    assert _table_column(page, "notation") == [str(n) for n in range(1, 10)]
    # Tab leaves the editor (no keyboard trap) and reaches the controls.
    editor.focus()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") != "query"
    # Sort by keyboard: focus the header button, press Enter twice for descending.
    sort = page.locator("#results th button[data-var=notation]")
    sort.focus()
    page.keyboard.press("Enter")
    page.keyboard.press("Enter")
    assert page.locator("#results th:has(button[data-var=notation])").get_attribute("aria-sort") == "descending"
    assert _table_column(page, "notation")[0] == "9"
    # Every form control has a label.
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('input, select, textarea')]
             .filter(el => el.type !== 'hidden' && !(el.labels && el.labels.length) && !el.getAttribute('aria-label'))
             .map(el => el.id || el.name)"""
    )
    assert unlabelled == []


def test_reasoning_toggle_changes_results(server: str, page: Any) -> None:
    page.goto(server + "/")
    page.get_by_label("Example query").select_option(FLAGSHIP)
    page.get_by_label("Include inferred statements", exact=False).uncheck()
    page.get_by_role("button", name="Run example").click()
    page.wait_for_function("() => document.querySelector('#status').textContent.includes('rows')")
    assert page.locator("#results table tbody tr").count() == 0  # co-handling is never asserted


def test_section_page_language_switch_and_links(server: str, page: Any, artifacts: Path, request_log) -> None:
    page.goto(server + "/id/section/6")
    assert page.locator("h1").inner_text() == "Secretarial Section 6"
    assert page.locator("html").get_attribute("lang") == "en"
    # Labels in both languages, statements with source quotes, inferred ones marked as such.
    assert page.locator(".labels dd[lang=zh]").inner_text() == "秘书六科"
    assert page.locator("tr.inferred .badge.inferred").count() > 0
    assert page.locator("tr.asserted a.cite").count() > 0
    assert "城乡建设" in page.locator(".sources blockquote").first.inner_text()
    page.screenshot(path=artifacts / "section-6-en.png", full_page=True)

    page.get_by_role("link", name="中文").click()
    page.wait_for_url(re.compile(r"lang=zh"))
    assert page.locator("h1").inner_text() == "秘书六科"
    assert page.locator("html").get_attribute("lang") == "zh-Hans"
    page.screenshot(path=artifacts / "section-6-zh.png", full_page=False)

    # Follow a link: the office this section belongs to; the language choice is remembered.
    page.locator("tbody.property a.iri[href='/id/organization/office']").first.click()
    page.wait_for_url(re.compile(r"/id/organization/office$"))
    assert page.locator("h1").inner_text() == "贵安新区管委会办公室"
    assert not request_log.console_errors, request_log.console_errors


def test_pictures_render_nine_sections(server: str, page: Any, artifacts: Path) -> None:
    page.goto(server + "/graph?lang=en")
    page.get_by_label("Project", exact=True).select_option("major-industrial-project")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url(re.compile(r"project=major-industrial-project"))
    for picture in ("#organisation-picture svg", "#network-picture svg"):
        svg = page.locator(picture)
        box = svg.bounding_box()
        assert box and box["width"] > 300 and box["height"] > 150, box
        assert svg.locator("[data-kind=section]").count() == 9
    highlighted = page.locator("#network-picture svg .node.section.highlight").evaluate_all(
        "els => els.map(el => el.dataset.key.split('/').pop()).sort()"
    )
    assert {"6", "7", "8"} <= set(highlighted), highlighted
    stated = page.locator("#network-picture svg .node.section.stated").evaluate_all(
        "els => els.map(el => el.dataset.key.split('/').pop()).sort()"
    )
    assert stated == ["5", "7", "8"]
    page.screenshot(path=artifacts / "pictures.png", full_page=True)
    page.locator("#organisation-picture svg a[data-key$='/section/6']").click()
    page.wait_for_url(re.compile(r"/id/section/6$"))


def test_ontology_and_shapes_docs(server: str, page: Any, artifacts: Path) -> None:
    page.goto(server + "/ontology")
    assert page.locator("#SecretarialSection").count() == 1
    assert "coHandledBy" in page.content()
    page.screenshot(path=artifacts / "ontology.png")
    page.goto(server + "/ontology/shapes")
    assert page.locator("section.shape").count() > 5
    page.screenshot(path=artifacts / "shapes.png")


def test_no_request_leaves_loopback(server: str, page: Any, request_log) -> None:
    """A tour of every page and action; every URL the browser asked for is on 127.0.0.1."""
    page.goto(server + "/")
    page.get_by_label("Example query").select_option(FLAGSHIP)
    page.get_by_role("button", name="Run example").click()
    page.wait_for_selector("#results table tbody tr")
    page.locator("#query").press("Control+Enter")
    page.wait_for_selector("#results table tbody tr")
    for path in ("/id/section/6", "/id/project/major-industrial-project", "/graph", "/ontology", "/ontology/shapes"):
        page.goto(server + path)
        page.wait_for_load_state("networkidle")
    assert len(request_log.urls) > 10
    hosts = {re.match(r"^[a-z]+://([^/:]+)", url).group(1) for url in request_log.urls if "://" in url}
    assert hosts == {"127.0.0.1"}, hosts
    assert request_log.blocked == []
