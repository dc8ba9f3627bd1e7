"""Sandbox backends by name; each starts the same worker and speaks the same protocol."""

from __future__ import annotations

from langgraph_rlm.extras import MissingExtra
from langgraph_rlm.sandboxes.base import Sandbox, SandboxSpec, SandboxUnavailable
from langgraph_rlm.sandboxes.docker import DockerSandbox
from langgraph_rlm.sandboxes.e2b import E2BSandbox
from langgraph_rlm.sandboxes.local import LocalSandbox
from langgraph_rlm.sandboxes.process import ProcessSandbox

BACKENDS = {"local": LocalSandbox, "process": ProcessSandbox, "docker": DockerSandbox, "e2b": E2BSandbox}


def make_sandbox(kind: str, spec: SandboxSpec) -> Sandbox:
    check_available(kind)
    return BACKENDS[kind](spec)


def check_available(kind: str) -> None:
    """SandboxUnavailable, with what to do instead, when `kind` cannot run here (its extra not
    installed included)."""
    if kind in BACKENDS:
        try:
            BACKENDS[kind].check_available()
        except MissingExtra as exc:
            raise SandboxUnavailable(str(exc)) from None
        return
    raise SandboxUnavailable(f"unknown sandbox {kind!r}: choose local, docker, e2b or process")
