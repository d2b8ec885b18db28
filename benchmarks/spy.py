"""Where a server's time goes: py-spy's raw samples summed by role (web, engine, serialise, log, ...)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from benchmarks.common import VENV_BIN

PY_SPY = VENV_BIN / "py-spy"


def roles(raw: Path, top: int = 12) -> dict:
    """py-spy collapsed stacks grouped by process role, with self and inclusive shares of our own functions."""
    groups: dict[str, dict] = {}
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if not f.startswith(("process ", "thread "))]
        total += count
        names = [_short(f) for f in frames]
        if any(n.startswith("_worker_main ") for n in names):
            role = "query worker (engine)"
        elif any(n.startswith("_zygote_main ") for n in names):
            role = "zygote"
        elif any("granian/wsgi" in n or "flask" in n or n.startswith("_runner ") for n in names):
            role = "web request threads (granian WSGI + Flask + app)"
        else:
            role = "other (granian main, idle native, reaper threads)"
        group = groups.setdefault(role, {"samples": 0, "self": {}, "ours": {}})
        group["samples"] += count
        if names:
            group["self"][names[-1]] = group["self"].get(names[-1], 0) + count
        for name in set(names):
            if (
                "(service/" in name
                or "(werkzeug/" in name
                or "(flask/" in name
                or "(json/" in name
                or "(logging/" in name
                or "(prometheus_client/" in name
            ):
                group["ours"][name] = group["ours"].get(name, 0) + count
    result = {"samples": total, "roles": {}}
    for role, group in sorted(groups.items(), key=lambda x: -x[1]["samples"]):
        result["roles"][role] = {
            "share": round(100 * group["samples"] / total, 1) if total else 0,
            "self": [
                (k, round(100 * v / total, 1)) for k, v in sorted(group["self"].items(), key=lambda x: -x[1])[:top]
            ],
            "inclusive": [
                (k, round(100 * v / total, 1)) for k, v in sorted(group["ours"].items(), key=lambda x: -x[1])[:top]
            ],
        }
    return result


def _short(frame: str) -> str:
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "/work/main/", "python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{name} ({path})"


def record(pid: int, raw: Path, rate: int, seconds: int) -> subprocess.Popen:
    """Start py-spy recording the process tree of `pid` into `raw` (raw format); it stops after `seconds`."""
    command = [str(PY_SPY), "record", "--pid", str(pid), "--subprocesses", "--format", "raw", "--rate", str(rate)]
    command += ["--duration", str(seconds), "--output", str(raw), "--nonblocking"]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
