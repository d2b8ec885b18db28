"""The systems the benchmarks start: our service, the peers' data, and the hello-world ceiling."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

from benchmarks import common
from benchmarks.common import REPO, VENV_BIN, Server


def guian_kg_command() -> list[str]:
    """The `guian-kg` console script, or the module when the package is not installed in the venv."""
    script = VENV_BIN / "guian-kg"
    return [str(script)] if script.exists() else [sys.executable, "-m", "service.cli"]


def export_dataset(folder: Path) -> Path:
    """Our dataset with its inferences, as N-Quads (what the peers load)."""
    target = folder / "dataset.nq"
    subprocess.run([*guian_kg_command(), "export", "--format", "nquads", "--output", str(target)], cwd=REPO, check=True)
    return target


def prepare_oxigraph(folder: Path, nquads: Path) -> tuple[Path, float]:
    """An Oxigraph store directory loaded with the dataset, and the load time."""
    store = folder / "oxigraph"
    shutil.rmtree(store, ignore_errors=True)
    started = time.perf_counter()
    subprocess.run(
        [str(VENV_BIN / "oxigraph"), "load", "--location", str(store), "--file", str(nquads)],
        check=True,
        capture_output=True,
    )
    return store, time.perf_counter() - started


def ceiling_server(folder: Path, workers: int) -> Server:
    port = common.free_port()
    return Server(
        "ceiling",
        [
            str(VENV_BIN / "granian"),
            "--interface",
            "wsgi",
            "--workers",
            str(workers),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "benchmarks.hello:app",
        ],
        port,
        "/",
        log_path=folder / "ceiling.log",
    )
