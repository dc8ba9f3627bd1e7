"""What can run on this machine: each sandbox, started the way a run starts it, which model
credentials are present, and (on request) whether each configured model answers."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
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


async def sandbox_checks(settings: RLMSettings) -> list[Check]:
    return list(await asyncio.gather(*(check_sandbox(kind, settings) for kind in SANDBOXES)))


async def check_sandbox(kind: str, settings: RLMSettings) -> Check:
    """Only a sandbox that really started, with what a run gives it, is reported ok."""
    try:
        check_available(kind)
        await first_cell(replace(settings, sandbox=kind))
    except SandboxUnavailable as exc:
        return Check(kind, False, str(exc))
    except Exception as exc:
        return Check(kind, False, " ".join(str(exc).split())[:400] or type(exc).__name__)
    return Check(kind, True, await asyncio.to_thread(DETAILS[kind], settings))


class NoSubCalls:
    async def llm_query(self, prompt: str, model: str | None) -> str:
        raise RuntimeError("the doctor's probe makes no sub-calls")

    async def rlm_query(self, prompt: str, context_sha: str | None) -> str:
        raise RuntimeError("the doctor's probe makes no sub-calls")


async def first_cell(settings: RLMSettings) -> None:
    """What a run's first step does: a context file in the configured state dir, stored there and
    mounted from the store, one cell that reads it, then the sandbox closed. The probe's file and
    blobs (unique to it) go afterwards."""
    from langgraph_rlm.graph.resources import ONE_SHOT, resources_for
    from langgraph_rlm.persistence.contexts import ingest

    resources = await resources_for(settings)
    token = secrets.token_hex(8)
    probe = Path(settings.state_dir) / f"doctor-{settings.sandbox}-{token}.txt"
    text = f"rlm doctor probe {token}\n"
    await asyncio.to_thread(probe.parent.mkdir, parents=True, exist_ok=True)
    await asyncio.to_thread(probe.write_text, text)
    key = f"{ONE_SHOT}doctor-{settings.sandbox}-{token}"
    stored: list[str] = []
    try:
        [ref] = await asyncio.to_thread(ingest, str(probe), 0, resources.blobs)
        stored.append(ref["sha"])
        session = await resources.session(key, settings, [ref])
        async with session.lock:
            await session.ensure(None)
            result = await session.run(
                "print(len(context))",
                contexts=[ref],
                subcalls=NoSubCalls(),
                timeout=settings.cell_timeout,
                output_limit=settings.output_limit,
            )
        stored += [result.snapshot] if result.snapshot else []
        if result.stdout.strip() != str(len(text)):
            said = result.error or result.stderr or result.stdout
            raise RuntimeError(f"the sandbox started, but a cell reading its context failed: {said.strip()}")
    finally:
        await resources.pool.close(key)
        for sha in stored:
            await asyncio.to_thread(resources.blobs.delete, sha)
        await asyncio.to_thread(probe.unlink, missing_ok=True)


def bubblewrap_detail(settings: RLMSettings) -> str:
    bwrap = shutil.which("bwrap") or "bwrap"
    version = subprocess.run([bwrap, "--version"], capture_output=True, text=True).stdout.strip()
    return f"{version}: network and files isolated; {local_limits()}"


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


def docker_detail(settings: RLMSettings) -> str:
    from langgraph_rlm.sandboxes.docker import docker_client

    return f"Docker {docker_client().version().get('Version', '?')}, image {settings.docker_image}"


DETAILS: dict[str, Callable[[RLMSettings], str]] = {
    "local": bubblewrap_detail,
    "docker": docker_detail,
    "e2b": lambda settings: "E2B_API_KEY is set: sandboxes are created in E2B's cloud",
    "process": lambda settings: "runs the worker as a plain child process: no isolation",
}


async def all_checks(settings: RLMSettings, models: bool) -> list[Check]:
    checks = [*await sandbox_checks(settings), *model_checks(settings)]
    return checks + (await model_answers(settings) if models else [])


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
