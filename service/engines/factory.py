"""The engine a deployment's settings name."""

from __future__ import annotations

from service.config import Settings
from service.data.snapshots import Snapshot
from service.engines.base import Engine
from service.engines.embedded import EmbeddedEngine
from service.engines.federating import FederatingEmbeddedEngine
from service.engines.reference import RdflibEngine
from service.engines.remote import RemoteEngine
from service.errors import (
    ConfigError,
)


def engine_for(settings: Settings, snapshot: Snapshot) -> Engine:
    """The engine `settings.engine` names, loaded with the snapshot (remote: connected to the store).

    Raises:
        ConfigError: an unknown engine, or a remote store that cannot be queried.
    """
    if settings.engine == "embedded":
        if settings.service_allow:  # pyoxigraph cannot be told how to call SERVICE: see service.engines.federating
            return FederatingEmbeddedEngine(snapshot, settings.service_allow, settings.service_timeout)
        return EmbeddedEngine(snapshot, settings.service_allow)
    if settings.engine == "rdflib":
        return RdflibEngine(snapshot, settings.service_allow, settings.service_timeout)
    if settings.engine == "remote":
        return RemoteEngine(settings, snapshot)
    raise ConfigError(f"unknown engine {settings.engine!r}")
