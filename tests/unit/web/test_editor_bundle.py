"""The committed editor bundle is exactly what the pinned packages build (`npm ci` + `node build.mjs`).

CI installs service/web/static-src/node_modules with `npm ci` (.ci/run); without it the test is skipped on a
developer machine and fails under CI=true.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from processes import in_ci

SOURCE = Path(__file__).resolve().parents[3] / "service" / "web" / "static-src"
BUNDLE = SOURCE.parent / "static" / "editor.bundle.js"


def _require(ready: bool, why: str) -> None:
    if not ready:
        if in_ci():
            pytest.fail(f"the editor bundle cannot be rebuilt under CI=true: {why}")
        pytest.skip(why)


def test_every_package_is_pinned_to_one_version() -> None:
    manifest = json.loads((SOURCE / "package.json").read_text(encoding="utf-8"))
    lock = json.loads((SOURCE / "package-lock.json").read_text(encoding="utf-8"))
    wanted = manifest["devDependencies"]
    assert all(version[0].isdigit() for version in wanted.values()), wanted  # no ranges
    for name, version in wanted.items():
        assert lock["packages"][f"node_modules/{name}"]["version"] == version, name


def test_the_committed_bundle_is_rebuilt_byte_for_byte(tmp_path: Path) -> None:
    _require(shutil.which("node") is not None, "node is not installed")
    _require((SOURCE / "node_modules" / "esbuild").is_dir(), "run `npm ci --prefix service/web/static-src` first")
    rebuilt = tmp_path / "editor.bundle.js"
    subprocess.run(["node", "build.mjs", str(rebuilt)], cwd=SOURCE, check=True, timeout=120)
    assert rebuilt.read_bytes() == BUNDLE.read_bytes(), (
        "service/web/static/editor.bundle.js differs from its sources: "
        "run `npm run build --prefix service/web/static-src`"
    )
    # It fetches only its own origin's /api/complete and /api/lint: the one absolute URL is SVG's namespace.
    assert set(re.findall(rb"https?://[^\s\"'`)]+", BUNDLE.read_bytes())) == {b"http://www.w3.org/2000/svg"}
