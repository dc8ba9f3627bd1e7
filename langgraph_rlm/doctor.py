"""What can run on this machine: each sandbox, which model credentials are present, and (on
request) whether each configured model answers."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from langgraph_rlm.graph.config import SANDBOXES, RLMSettings
from langgraph_rlm.sandboxes import check_available
from langgraph_rlm.sandboxes.base import SandboxUnavailable

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

CREDENTIAL_SUFFIXES = ("_API_KEY", "_API_TOKEN", "_ACCESS_KEY_ID")
PING = "Reply with the word OK."


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


def sandbox_checks(settings: RLMSettings) -> list[Check]:
    return [check_sandbox(kind, settings) for kind in SANDBOXES]


def check_sandbox(kind: str, settings: RLMSettings) -> Check:
    try:
        check_available(kind)
    except SandboxUnavailable as exc:
        return Check(kind, False, str(exc))
    if kind == "local":
        return probe_bubblewrap()
    if kind == "docker":
        return probe_docker(settings.docker_image)
    if kind == "e2b":
        return Check(kind, True, "E2B_API_KEY is set: sandboxes are created in E2B's cloud")
    return Check(kind, True, "runs the worker as a plain child process: no isolation")


def probe_bubblewrap() -> Check:
    """bwrap can be installed and still refuse to start (no user namespaces): try it."""
    bwrap = shutil.which("bwrap") or "bwrap"
    probe = subprocess.run(
        [bwrap, "--ro-bind", "/", "/", "--unshare-all", "--die-with-parent", "true"],
        capture_output=True,
        text=True,
    )
    version = subprocess.run([bwrap, "--version"], capture_output=True, text=True).stdout.strip()
    if probe.returncode != 0:
        return Check("local", False, f"{version} cannot start a sandbox: {probe.stderr.strip()}")
    return Check("local", True, f"{version}: network and files isolated; {local_limits()}")


def local_limits() -> str:
    """Which limits hold depends on whether each sandbox can get a cgroup (root, or a delegated tree)
    and whether there is a seccomp syscall table for this machine."""
    from langgraph_rlm.sandboxes import cgroup, seccomp

    enforced = cgroup.probe()
    no_filter = seccomp.unavailable_reason()
    parts = [
        "memory: all of it (heap, /tmp, memfd) by a cgroup"
        if "memory" in enforced
        else "memory: the heap (RLIMIT_AS) and /tmp (sized); memfd files are not counted",
        "processes: per sandbox (pids cgroup)"
        if "pids" in enforced
        else "processes: RLIMIT_NPROC, shared by every sandbox of the same user",
        "CPU: --cpus quota" if "cpu" in enforced else "CPU: not limited",
        "syscalls: seccomp refuses new namespaces, mounts, ptrace, keyrings, bpf and kernel modules"
        if no_filter is None
        else f"syscalls: not filtered ({no_filter})",
    ]
    return "; ".join(parts)


def probe_docker(image: str) -> Check:
    from langgraph_rlm.sandboxes.docker import docker_client

    client = docker_client()
    version = client.version().get("Version", "?")
    try:
        client.images.get(image)
        has_image = f"image {image} present"
    except Exception:
        has_image = f"image {image} not present yet (it is pulled on first use; --docker-image to change)"
    return Check("docker", True, f"Docker {version}; {has_image}")


def credential_names() -> list[str]:
    """Names of the provider credentials set in the environment; never their values."""
    return sorted(k for k, v in os.environ.items() if k.endswith(CREDENTIAL_SUFFIXES) and v.strip())


def configured_models(settings: RLMSettings) -> list[tuple[str, str | BaseChatModel]]:
    depths = [(f"depth-{depth} model", model) for depth, model in enumerate(settings.depth_models)]
    return [("model", settings.model), ("sub-model", settings.sub_model), *depths]


def model_checks(settings: RLMSettings) -> list[Check]:
    from langgraph_rlm.llm.models import missing_credentials

    checks = []
    for role, model in configured_models(settings):
        missing = missing_credentials(model, settings.api_base)
        where = f" via {settings.api_base}" if settings.api_base else ""
        detail = f"needs {', '.join(missing)}" if missing else f"credentials present{where}"
        checks.append(Check(f"{role} {model}", not missing, detail))
    return checks


async def model_answers(settings: RLMSettings) -> list[Check]:
    """One tiny request to each configured model, all at once, none retried: what a first run
    would meet, found in seconds."""
    from langgraph_rlm.llm.models import ask
    from langgraph_rlm.llm.retry import ModelCallError, named, with_retries

    async def answers(role: str, model: str | BaseChatModel) -> Check:
        started = time.monotonic()
        try:
            await with_retries(
                lambda: ask(model, PING, settings.api_base, 0, max_tokens=5),
                retries=0,
                model=named(model, settings.api_base),
            )
        except ModelCallError as exc:
            return Check(f"{role} {named(model)} answers", False, str(exc))
        return Check(f"{role} {named(model)} answers", True, f"answered in {time.monotonic() - started:.1f}s")

    return list(await asyncio.gather(*(answers(role, model) for role, model in configured_models(settings))))
