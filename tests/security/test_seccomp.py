"""Code in a `local` sandbox cannot make namespaces of its own or reach further into the kernel
(io_uring, other processes, the clock, AF_ALG and AF_VSOCK sockets...: whatever Docker's default
profile refuses), and still runs threads, subprocesses and forks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import tests.seccomp_probe
from langgraph_rlm.sandboxes import seccomp
from tests.conftest import NoSubCalls
from tests.seccomp_probe import expected

PROBE_CELL = Path(tests.seccomp_probe.__file__).read_text() + "\nimport json\nprint(json.dumps(probe()))\n"


async def test_namespaces_io_uring_and_other_kernel_reach_are_refused_inside_local(open_session):
    if seccomp.unavailable_reason() is not None:
        pytest.skip(seccomp.unavailable_reason())
    session = await open_session("local")
    result = await session.run(
        PROBE_CELL, contexts=[], subcalls=NoSubCalls(), timeout=60, output_limit=20_000
    )
    assert result.error is None, result.error
    assert json.loads(result.stdout) == expected()
