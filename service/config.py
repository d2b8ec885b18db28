"""One table of settings: flags beat GUIAN_KG_* environment variables beat defaults."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from service.errors import ConfigError

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise ValueError("must be a positive number")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise ValueError("must be 0 or more")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError("must be a positive whole number")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError("must be 0 or more")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise ValueError("must be a port number (0-65535)")
    return value


def _boolean(text: str) -> bool:
    lowered = str(text).strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError("must be true or false")


def _log_level(text: str) -> str:
    level = text.strip().upper()
    if level not in LOG_LEVELS:
        raise ValueError(f"not a logging level (one of {', '.join(LOG_LEVELS)})")
    return level


def _engine(text: str) -> str:
    if text not in {"embedded", "rdflib", "remote"}:
        raise ValueError("must be one of embedded, rdflib, remote")
    return text


def _reasoner(text: str) -> str:
    if text not in {"rl", "owlrl"}:
        raise ValueError("must be one of rl, owlrl")
    return text


def _iri_base(text: str) -> str:
    if not text.startswith(("http://", "https://")) or not text.endswith("/"):
        raise ValueError("must be an http(s) IRI ending in '/'")
    return text


def _urls(text: str) -> tuple[str, ...]:
    urls = tuple(text.split())
    for url in urls:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"{url!r} is not an http(s) URL")
    return urls


def _optional(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse_optional(text: str) -> Any:
        return parse(text) if text not in ("", None) else None

    return parse_optional


def _path(text: str) -> Path:
    return Path(text).expanduser()


def _paths(text: str) -> tuple[Path, ...]:
    paths = tuple(Path(part).expanduser() for part in text.split(os.pathsep) if part)
    for path in paths:
        if not path.exists():
            raise ValueError(f"{str(path)!r} does not exist")
    return paths


def _url(text: str) -> str:
    if not text.startswith(("http://", "https://")):
        raise ValueError("must be an http(s) URL")
    return text


def _text(text: str) -> str:
    return text


@dataclass(frozen=True)
class Setting:
    """One setting: its name, flag, environment variable, default (as text) and help line."""

    name: str
    default: str | None
    parse: Callable[[str], Any]
    help: str

    @property
    def env(self) -> str:
        return "GUIAN_KG_" + self.name.upper()

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


SETTINGS: tuple[Setting, ...] = (
    Setting("host", "127.0.0.1", _text, "Address `guian-kg serve` listens on."),
    Setting("port", "8000", _port, "Port `guian-kg serve` listens on."),
    Setting("workers", "2", _positive_int, "Web worker processes of `guian-kg serve`."),
    Setting("threads", "8", _positive_int, "Request threads per web worker."),
    Setting("engine", "embedded", _engine, "Query engine: embedded (pyoxigraph), rdflib, or remote."),
    Setting("remote_query", None, _optional(_url), "Query endpoint URL of the remote store (engine=remote)."),
    Setting("remote_update", None, _optional(_url), "Update endpoint URL of the remote store (engine=remote)."),
    Setting(
        "remote_poll",
        "2",
        _non_negative_float,
        "Seconds between probes of the remote store for changes made behind our back (0: never; engine=remote).",
    ),
    Setting(
        "remote_recheck",
        "300",
        _non_negative_float,
        "Seconds between whole comparisons with the remote store, whatever the probe says (0: never).",
    ),
    Setting(
        "public_url",
        None,
        _optional(_url),
        "Public base URL of the service (behind a proxy: the proxy's); absolute URLs use it, never Host. "
        "Unset: http://<host>:<port>/.",
    ),
    Setting(
        "data",
        None,
        _optional(_paths),
        "RDF files or folders to serve instead of the shipped data (flag: several paths; variable: paths joined "
        "by `:`); an empty folder serves an empty dataset.",
    ),
    Setting("base_iri", "https://w3id.org/guian-kg/", _iri_base, "Base IRI of resources, graphs, ontology."),
    Setting("infer", "true", _boolean, "Include the inferred graph in queries unless a request says infer=false."),
    Setting("query_timeout", "10", _positive_float, "Query time limit in seconds; `timeout=` may only lower it."),
    Setting("query_memory_mb", "2048", _positive_int, "Address-space cap of a query worker process, in MiB."),
    Setting("query_workers", "3", _positive_int, "Query worker processes per web worker (killed on timeout)."),
    Setting(
        "memory_max_quads",
        "500000",
        _non_negative_int,
        "Largest dataset (quads) the embedded engine loads into memory; larger ones are queried from an on-disk "
        "store built once in the cache (0: always on disk).",
    ),
    Setting(
        "body_seconds", "15", _positive_float, "Time a request body may take to arrive whole, in seconds (408 after)."
    ),
    Setting(
        "max_connections",
        "1024",
        _positive_int,
        "Client connections per web worker; past the cap the longest-idle one is closed, or, all busy, 503.",
    ),
    Setting("idle_seconds", "10", _positive_float, "Time a connection may stay open without sending a request."),
    Setting(
        "header_seconds", "10", _positive_float, "Time the request line and headers may take, from their first byte."
    ),
    Setting("max_request_bytes", "1048576", _positive_int, "Largest request body or query accepted, in bytes."),
    Setting("max_result_rows", "100000", _positive_int, "Largest result (rows or triples) returned; more is an error."),
    Setting(
        "result_cache_mb",
        "64",
        _non_negative_int,
        "Memory per web worker for answers of repeated queries (per data version); 0 turns the cache off.",
    ),
    Setting("update_token", None, _optional(_text), "Bearer token for /update and /store writes; unset = read-only."),
    Setting(
        "source_writes",
        "false",
        _boolean,
        "Allow writes to the shipped source graphs (ontology, provenance, assumptions, claims); off: 403.",
    ),
    Setting("service_allow", "", _urls, "Space-separated endpoint URLs that SERVICE may call; empty = none."),
    Setting("service_timeout", "5", _positive_float, "Time limit of one SERVICE call, in seconds."),
    Setting(
        "store_dir",
        None,
        _optional(_path),
        "Durable store folder (journal, checkpoints); unset: read-only, or a temp folder if a token is set.",
    ),
    Setting("cache_dir", None, _optional(_path), "Folder for the cached reasoning closure; default ~/.cache/guian-kg."),
    Setting("reasoner", "rl", _reasoner, "OWL 2 RL reasoner: rl (fast, same result as owlrl) or owlrl, the reference."),
    Setting("log_level", "INFO", _log_level, "Logging level (DEBUG, INFO, WARNING, ERROR)."),
)

_BY_NAME = {setting.name: setting for setting in SETTINGS}


@dataclass(frozen=True)
class Settings:
    """Validated settings of one service instance."""

    host: str
    port: int
    workers: int
    threads: int
    engine: str
    remote_query: str | None
    remote_update: str | None
    remote_poll: float
    remote_recheck: float
    public_url: str | None
    data: tuple[Path, ...] | None
    base_iri: str
    infer: bool
    query_timeout: float
    query_memory_mb: int
    query_workers: int
    memory_max_quads: int
    body_seconds: float
    max_connections: int
    idle_seconds: float
    header_seconds: float
    max_request_bytes: int
    max_result_rows: int
    result_cache_mb: int
    update_token: str | None
    source_writes: bool
    service_allow: tuple[str, ...]
    service_timeout: float
    store_dir: Path | None
    cache_dir: Path | None
    reasoner: str
    log_level: str

    @property
    def reasoning_cache(self) -> Path:
        """Folder where the reasoning closure and the loaded N-Quads are cached."""
        return self.cache_dir or Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser() / "guian-kg"


def load_settings(overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from overrides (flags), then GUIAN_KG_* variables, then defaults.

    Raises:
        ConfigError: listing every invalid or unknown setting at once.
    """
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    environ = os.environ if environ is None else environ
    problems = [f"unknown setting {name!r}" for name in overrides if name not in _BY_NAME]
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        if setting.name in overrides:
            raw, origin = overrides[setting.name], setting.flag
        elif setting.env in environ:
            raw, origin = environ[setting.env], setting.env
        else:
            raw, origin = setting.default, "default"
        if raw is None:
            values[setting.name] = None
            continue
        if not isinstance(raw, str):
            raw = setting_text(raw)  # already typed (tests, create_app overrides): validated all the same
        try:
            values[setting.name] = setting.parse(raw)
        except ValueError as exc:
            problems.append(f"{origin}={raw!r}: {exc}")
    if values.get("engine") == "remote" and not values.get("remote_query"):
        problems.append("engine=remote needs --remote-query URL (GUIAN_KG_REMOTE_QUERY)")
    for folder in ("store_dir", "cache_dir"):
        path = values.get(folder)
        if path is not None:
            problem = _folder_problem(path)
            if problem:
                problems.append(f"{folder}={str(path)!r} {problem}")
    if problems:
        raise ConfigError("invalid settings: " + "; ".join(problems))
    return Settings(**{f.name: values[f.name] for f in fields(Settings)})


def _folder_problem(path: Path) -> str | None:
    """Why `path` cannot be (or become) a folder we write in, or None."""
    if path.exists():
        return None if path.is_dir() else "is not a folder"
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        return f"cannot be made: {str(parent)!r} is not a folder"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"cannot be made: {str(parent)!r} is not writable"
    return None


def setting_text(value: Any) -> str | None:
    """A typed setting value written back as the text its GUIAN_KG_* variable would hold (None = unset)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return os.pathsep.join(str(v) for v in value) if all(isinstance(v, Path) for v in value) else " ".join(value)
    if isinstance(value, Path):
        return str(value)
    return str(value)


def export_settings(settings: Settings, environ: dict[str, str] | os._Environ = os.environ) -> None:
    """Put every setting into GUIAN_KG_* variables, so that workers' `create_app()` sees the flags too."""
    by_name = {s.name: s for s in SETTINGS}
    for item in fields(settings):
        env = by_name[item.name].env
        text = setting_text(getattr(settings, item.name))
        if text is None:
            environ.pop(env, None)
        else:
            environ[env] = text
