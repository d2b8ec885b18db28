"""Fixtures for the data tests: the source document, its division-of-labour table, and the asserted graphs."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from rdflib import Dataset, Graph

from service.data.validation import asserted_union
from service.data.validation import data_dataset as load_data_dataset
from service.resources import source_document

# Read at import: the session fixture of tests/conftest.py clears GUIAN_KG_* variables before tests run.
_ENV_SOURCE = os.environ.get("GUIAN_KG_SOURCE")
_SHARED_SEED = Path(__file__).resolve().parents[2].parent / "shared" / "seed" / "000_6a03369a891ee188.txt"

CHINESE_DIGITS = {c: i for i, c in enumerate("一二三四五六七八九", start=1)}


@dataclass(frozen=True)
class TableRow:
    """One row of the source's division-of-labour table, as the source writes it."""

    text: str  # the row, verbatim: "| 秘书一科 | … | … |"
    section_name: str  # 秘书一科
    number: int  # 1
    duty_direction: str  # 综合协调与文秘
    work_cell: str  # the third cell, verbatim
    work_items: tuple[str, ...]  # the third cell split into entries


def _chinese_number(numeral: str) -> int:
    """The value of a one-character Chinese numeral 一 … 九."""
    return CHINESE_DIGITS[numeral]


def split_work_items(cell: str) -> tuple[str, ...]:
    """The entries of a work-content cell: split on 、, unless the cell is one enumeration ending in 等 (etc.)."""
    cell = cell.removeprefix("负责")  # "responsible for …" governs the whole list
    if "等" in cell:
        return (cell,)
    return tuple(part for part in cell.split("、") if part)


def parse_table(source: str) -> list[TableRow]:
    """The table rows of the source (the whole table is one line of `| … |` cells)."""
    rows = []
    for match in re.finditer(r"\| (秘书(.)科) \| ([^|]+?) \| ([^|]+?) \|", source):
        name, numeral, duty, cell = match.groups()
        rows.append(TableRow(match.group(0), name, _chinese_number(numeral), duty, cell, split_work_items(cell)))
    return rows


@pytest.fixture(scope="session")
def chinese_number() -> Callable[[str], int]:
    """Reads a one-character Chinese numeral (一 … 九), as the source numbers its sections."""
    return _chinese_number


@pytest.fixture(scope="session")
def source_path() -> Path:
    """The source document: GUIAN_KG_SOURCE if set, else the repository copy, else the shared seed."""
    for candidate in (_ENV_SOURCE, source_document(), _SHARED_SEED):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    pytest.fail("source document not found (set GUIAN_KG_SOURCE)")


@pytest.fixture(scope="session")
def source_text(source_path: Path) -> str:
    """The text of the source document."""
    return source_path.read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def table_rows(source_text: str) -> list[TableRow]:
    """The nine rows of the division-of-labour table, parsed from the source."""
    rows = parse_table(source_text)
    assert rows, "no table rows found in the source"
    return rows


@pytest.fixture(scope="session")
def data_dataset() -> Dataset:
    """Every graph_data TriG file in one dataset, graphs as written (the ontology not included)."""
    return load_data_dataset()


@pytest.fixture(scope="session")
def union_graph() -> Graph:
    """The asserted union (ontology + data), shared read-only: copy it before changing it."""
    return asserted_union()


@pytest.fixture
def union_copy(union_graph: Graph) -> Graph:
    """A private copy of the asserted union that a test may break."""
    copy = Graph()
    for triple in union_graph:
        copy.add(triple)
    return copy
