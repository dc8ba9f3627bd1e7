"""The seccomp program on its own: installed in a host process by prctl, without bubblewrap."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from langgraph_rlm.sandboxes import seccomp
from tests.seccomp_probe import expected

INSTALL_AND_PROBE = """
import ctypes, json
from langgraph_rlm.sandboxes import seccomp
from tests.seccomp_probe import probe

program = ctypes.create_string_buffer(seccomp.program(), len(seccomp.program()))
class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]
fprog = SockFprog(len(program) // 8, ctypes.addressof(program))
libc = ctypes.CDLL(None, use_errno=True)
PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2
assert libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0
assert libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) == 0, ctypes.get_errno()
print(json.dumps(probe()))
"""


def test_the_filter_refuses_namespaces_and_kernel_reach_and_lets_ordinary_work_through():
    if seccomp.unavailable_reason() is not None:
        pytest.skip(seccomp.unavailable_reason())
    root = Path(__file__).parents[2]
    done = subprocess.run(
        [sys.executable, "-c", INSTALL_AND_PROBE],
        capture_output=True,
        text=True,
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == expected()


def test_a_machine_without_a_syscall_table_gets_no_filter_and_says_why():
    assert seccomp.unavailable_reason("riscv64") == "no seccomp syscall table for riscv64"
    with pytest.raises(seccomp.Unsupported):
        seccomp.program("riscv64")
