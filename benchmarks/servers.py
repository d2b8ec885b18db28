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


# --- Virtuoso (Debian's virtuoso-opensource-7-bin), shared with tests/e2e/conftest.py ------------------------

VIRTUOSO_INI = """\
[Database]
DatabaseFile = {folder}/virtuoso.db
ErrorLogFile = {folder}/virtuoso.log
TransactionFile = {folder}/virtuoso.trx
xa_persistent_file = {folder}/virtuoso.pxa
MaxCheckpointRemap = 2000
Striping = 0
TempStorage = TempDatabase

[TempDatabase]
DatabaseFile = {folder}/virtuoso-temp.db
TransactionFile = {folder}/virtuoso-temp.trx
MaxCheckpointRemap = 2000
Striping = 0

[Parameters]
ServerPort = 127.0.0.1:{sql_port}
DirsAllowed = ., {folder}
NumberOfBuffers = {buffers}
MaxDirtyBuffers = {dirty_buffers}
ThreadsPerQuery = 2
CheckpointInterval = 60

[HTTPServer]
ServerPort = 127.0.0.1:{http_port}
ServerRoot = {folder}
MaxClientConnections = 5
ServerThreads = 5

[SPARQL]
ResultSetMaxRows = 100000
MaxQueryExecutionTime = 30
"""


def virtuoso_commands() -> tuple[str | None, str | None]:
    """`virtuoso-t` and `isql-vt` on PATH (Debian's virtuoso-opensource-7-bin), or None."""
    return shutil.which("virtuoso-t"), shutil.which("isql-vt")


def virtuoso_version(binary: str) -> str:
    """The version `virtuoso-t -?` prints."""
    done = subprocess.run([binary, "-?"], capture_output=True, text=True, timeout=30)
    return next((w for w in (done.stdout + done.stderr).split() if w[:1].isdigit() and "." in w), "?")


def write_virtuoso_ini(folder: Path, sql_port: int, http_port: int, buffers: int = 10000) -> Path:
    """A virtuoso.ini keeping everything in `folder`, listening on loopback; `buffers` pages of 8 KiB."""
    ini = folder / "virtuoso.ini"
    ini.write_text(
        VIRTUOSO_INI.format(
            folder=folder, sql_port=sql_port, http_port=http_port, buffers=buffers, dirty_buffers=buffers * 3 // 5
        )
    )
    return ini


def grant_sparql_update(isql: str, sql_port: int) -> None:
    """Let Virtuoso's SPARQL user (the /sparql endpoint) run SPARQL Update.

    Raises:
        RuntimeError: isql failed (with its output).
    """
    grant = 'GRANT SPARQL_UPDATE TO "SPARQL";'
    done = subprocess.run(
        [isql, f"127.0.0.1:{sql_port}", "dba", "dba", f"exec={grant}"], capture_output=True, text=True, timeout=60
    )
    if done.returncode != 0:
        raise RuntimeError(f"isql failed: {done.stdout}{done.stderr}")
