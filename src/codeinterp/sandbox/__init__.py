"""Isolated, stateful Python kernels behind one small interface (`codeinterp.sandbox.interface`).

    backend = create_backend(settings)   # the backend CODEINTERP_SANDBOX_BACKEND names
    await backend.start()
    session = await backend.create_session()
    ...
    await backend.stop()
"""

import importlib

from codeinterp.config import Settings
from codeinterp.sandbox.interface import SandboxBackend, SandboxSession
from codeinterp.sandbox.types import SandboxError


def create_backend(settings: Settings) -> SandboxBackend:
    """The backend `settings.sandbox_backend` names: "bwrap" (bubblewrap on this host), "remote"
    (sessions on sandbox hosts, `codeinterp sandbox-host`), "kubernetes" (a pod per session), or
    "package.module:Class", a `SandboxBackend` subclass made with the settings."""
    name = settings.sandbox_backend
    if name == "bwrap":
        from codeinterp.sandbox.bwrap import BwrapBackend

        return BwrapBackend(settings)
    if name == "remote":
        from codeinterp.sandbox.remote.backend import RemoteBackend

        return RemoteBackend(settings)
    if name == "kubernetes":
        from codeinterp.sandbox.kubernetes.backend import KubernetesBackend

        return KubernetesBackend(settings)
    module_name, _, class_name = name.partition(":")
    if not module_name or not class_name:
        raise SandboxError(f"Unknown sandbox backend {name!r}: use 'bwrap', 'remote', 'kubernetes' or 'package.module:Class'.")
    try:
        backend_class = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as error:
        raise SandboxError(f"Sandbox backend {name!r} cannot be loaded: {error}") from error
    if not (isinstance(backend_class, type) and issubclass(backend_class, SandboxBackend)):
        raise SandboxError(f"Sandbox backend {name!r} is not a SandboxBackend.")
    return backend_class(settings)


__all__ = ["SandboxBackend", "SandboxSession", "create_backend"]
