"""A built wheel, used from another directory, still finds the ontology, the data and the named queries."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-q", "-w", str(out)],
        check=True,
        cwd=out,
    )
    (built,) = out.glob("guian_kg-*.whl")
    return built


def test_wheel_ships_data_and_entry_point(wheel):
    listing = zipfile.ZipFile(wheel).namelist()
    assert "service/_data/ontology/guian-kg.ttl" in listing
    assert "service/_data/ontology/shapes.ttl" in listing
    assert any(n.startswith("service/_data/graph_data/") and n.endswith(".trig") for n in listing)
    assert any(n.startswith("service/_data/queries/") and n.endswith(".rq") for n in listing)
    assert "service/web/static/editor.bundle.js" in listing  # the built editor; its sources and node_modules stay out
    assert not any(n.startswith("service/web/static-src/") for n in listing)
    entry_points = next(n for n in listing if n.endswith("entry_points.txt"))
    assert "guian-kg = service.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_installed_copy_runs_from_elsewhere(wheel, tmp_path):
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    env = {**os.environ, "PYTHONPATH": str(site), "GUIAN_KG_CACHE_DIR": str(tmp_path / "cache")}
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    script = (
        "import service.resources as r, service.cli as c;"
        f"assert str(r.ontology_dir()).startswith({str(site)!r}), r.ontology_dir();"
        "raise SystemExit(c.main(['query', 'SELECT (COUNT(*) AS ?n) WHERE { ?s a ?c }', '-o', 'csv']))"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=elsewhere, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    count = int(result.stdout.split()[-1])
    assert count > 100
