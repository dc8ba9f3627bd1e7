"""The seccomp program on its own: installed in a host process by prctl, without bubblewrap, and
run call by call against what Docker's default profile refuses (tests/docker_seccomp_default.toml)."""

from __future__ import annotations

import errno
import json
import os
import re
import struct
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from langgraph_rlm.sandboxes import seccomp
from tests.seccomp_probe import PROBE_NUMBERS, expected

ROOT = Path(__file__).parents[2]
DOCKER = tomllib.loads((ROOT / "tests" / "docker_seccomp_default.toml").read_text())
STRICTER_THAN_DOCKER = {"ptrace", "process_vm_readv", "process_vm_writev", "name_to_handle_at"}
"""Calls Docker's default allows (ptrace and process_vm_* from kernel 4.8) that the filter refuses;
the README's security model says why."""

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

RET_ALLOW, RET_ERRNO = 0x7FFF0000, 0x00050000
EPERM, ENOSYS = RET_ERRNO | errno.EPERM, RET_ERRNO | errno.ENOSYS


def verdict(arch: str, number: int, first_argument: int = 0) -> int:
    """What the filter returns for one call, found by running its classic-BPF program the way the
    kernel does; the opcodes are written out here, so a wrong one in the filter shows."""
    data = struct.pack("=II7Q", number, seccomp.AUDIT_ARCH[arch], 0, first_argument, 0, 0, 0, 0, 0)
    program = seccomp.program(arch)
    instructions = [struct.unpack_from("=HBBI", program, at) for at in range(0, len(program), 8)]
    counter, accumulator = 0, 0
    while True:
        op, jump_true, jump_false, k = instructions[counter]
        if op == 0x06:  # BPF_RET | BPF_K
            return k
        if op == 0x20:  # BPF_LD | BPF_W | BPF_ABS
            accumulator, counter = struct.unpack_from("=I", data, k)[0], counter + 1
            continue
        taken = {0x15: accumulator == k, 0x25: accumulator > k, 0x35: accumulator >= k, 0x45: accumulator & k}
        counter += 1 + (jump_true if taken[op] else jump_false)


def test_the_filter_refuses_namespaces_and_kernel_reach_and_lets_ordinary_work_through():
    if seccomp.unavailable_reason() is not None:
        pytest.skip(seccomp.unavailable_reason())
    done = subprocess.run(
        [sys.executable, "-c", INSTALL_AND_PROBE],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == expected()


@pytest.mark.parametrize("arch", sorted(seccomp.SYSCALLS))
def test_every_call_dockers_default_profile_refuses_is_refused(arch):
    allowed = [name for name, number in DOCKER["refused"][arch].items() if verdict(arch, number) == RET_ALLOW]
    assert allowed == []


@pytest.mark.parametrize("arch", sorted(seccomp.SYSCALLS))
def test_io_uring_and_calls_newer_than_the_table_look_unimplemented(arch):
    """ENOSYS is what a kernel built without io_uring answers: programs using it fall back."""
    newest_in_dockers_profile = PROBE_NUMBERS[arch]["open_tree_attr"] - 1
    for number in (425, 426, 427, newest_in_dockers_profile + 1, 1000):
        assert verdict(arch, number) == ENOSYS, number
    assert verdict(arch, newest_in_dockers_profile) == RET_ALLOW


@pytest.mark.parametrize("arch", sorted(seccomp.SYSCALLS))
def test_socket_personality_and_clone_arguments_are_checked_as_docker_checks_them(arch):
    rules = DOCKER["arguments"]
    socket, personality, clone = (PROBE_NUMBERS[arch][name] for name in ("socket", "personality", "clone"))
    for family in range(64):
        refused = family in rules["socket_families_refused"]
        assert verdict(arch, socket, family) == (EPERM if refused else RET_ALLOW), family
    for persona in rules["personas_allowed"]:
        assert verdict(arch, personality, persona) == RET_ALLOW, persona
    for persona in (0x0040000, 0x0400000, 0x0800000, 0x0000001, 0x0020001):
        assert verdict(arch, personality, persona) == EPERM, persona
    for bit in range(32):
        flag = 1 << bit
        refused = bool(flag & rules["clone_flags_refused"])
        assert verdict(arch, clone, flag | 17) == (EPERM if refused else RET_ALLOW), hex(flag)


def test_the_readme_names_each_call_the_filter_refuses_and_docker_allows():
    docker_refuses = {name for calls in DOCKER["refused"].values() for name in calls}
    ours = set(seccomp.DENIED) | set(seccomp.DENIED_X86_64) | set(seccomp.UNIMPLEMENTED)
    assert ours - docker_refuses == STRICTER_THAN_DOCKER
    readme = (ROOT / "README.md").read_text()
    security_model = readme[readme.index("## Security model") : readme.index("## Persistence")]
    unnamed = [name for name in sorted(STRICTER_THAN_DOCKER) if not re.search(rf"`{name}`", security_model)]
    assert unnamed == []
    assert "tests/docker_seccomp_default.toml" in security_model


def test_a_machine_without_a_syscall_table_gets_no_filter_and_says_why():
    assert seccomp.unavailable_reason("riscv64") == "no seccomp syscall table for riscv64"
    with pytest.raises(seccomp.Unsupported):
        seccomp.program("riscv64")
