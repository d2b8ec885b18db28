"""The README's examples are executed: every `console` block's commands must print what the README shows."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCUMENTED_BASE = "http://127.0.0.1:8000"


def console_examples() -> list[tuple[int, str, str]]:
    """(line number, command, expected output) for every `$ ` command in a ```console block."""
    examples = []
    lines = README.read_text(encoding="utf-8").splitlines()
    in_block = False
    current: list = []
    for number, line in enumerate(lines, start=1):
        if line.startswith("```"):
            in_block = line.strip() == "```console" and not in_block
            if not in_block and current:
                examples.append((current[0], current[1], "\n".join(current[2])))
                current = []
            continue
        if not in_block:
            continue
        if line.startswith("$ "):
            if current:
                examples.append((current[0], current[1], "\n".join(current[2])))
            current = [number, line[2:], []]
        elif current:
            current[2].append(line)
    return examples


EXAMPLES = console_examples()


def test_the_readme_has_examples_of_both_kinds():
    commands = [command for _, command, _ in EXAMPLES]
    assert any(c.startswith("guian-kg ") for c in commands)
    assert any(c.startswith("curl ") for c in commands)


@pytest.fixture(scope="module")
def server(start_server):
    return start_server()


def _normalise(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip().splitlines())


@pytest.mark.parametrize(("line", "command", "expected"), EXAMPLES, ids=[f"README:{e[0]}" for e in EXAMPLES])
def test_readme_example(line, command, expected, server, e2e_cache):
    if command.startswith("curl "):
        command = command.replace(DOCUMENTED_BASE, server.base)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GUIAN_KG_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["GUIAN_KG_CACHE_DIR"] = str(e2e_cache)
    result = subprocess.run(["bash", "-c", command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"README line {line}: {command}\n{result.stderr}"
    actual = result.stdout.replace(server.base, DOCUMENTED_BASE)
    actual = re.sub(r"\r\n", "\n", actual)
    assert _normalise(actual) == _normalise(expected), f"README line {line} prints something else:\n{actual}"
