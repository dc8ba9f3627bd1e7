"""The `local` sandbox's seccomp filter, in the spirit of Docker's default profile.

bubblewrap's namespaces hold only if code inside can neither make new ones (a user namespace
hands back every capability within it) nor reach past them: mounts, ptrace, keyrings, bpf,
kernel modules. The classic-BPF program is built here, so no libseccomp is needed; bubblewrap
installs it just before it starts the worker, and every process the worker starts inherits it.
"""

from __future__ import annotations

import errno
import platform
import struct

AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
X32_SYSCALL_BIT = 0x40000000
CLONE_NEW_FLAGS = 0x7E020000
"""CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID and NEWNET: a namespace made by clone()."""

DENIED = (
    "unshare",
    "setns",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "move_mount",
    "open_tree",
    "mount_setattr",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "keyctl",
    "add_key",
    "request_key",
    "bpf",
    "perf_event_open",
    "init_module",
    "finit_module",
    "delete_module",
    "kexec_load",
    "kexec_file_load",
    "reboot",
    "swapon",
    "swapoff",
    "acct",
    "syslog",
    "quotactl",
    "userfaultfd",
    "open_by_handle_at",
    "name_to_handle_at",
)
"""Refused with EPERM, whatever the arguments."""

SYSCALLS = {
    "x86_64": {
        "clone": 56,
        "clone3": 435,
        "unshare": 272,
        "setns": 308,
        "mount": 165,
        "umount2": 166,
        "pivot_root": 155,
        "chroot": 161,
        "fsopen": 430,
        "fsconfig": 431,
        "fsmount": 432,
        "fspick": 433,
        "move_mount": 429,
        "open_tree": 428,
        "mount_setattr": 442,
        "ptrace": 101,
        "process_vm_readv": 310,
        "process_vm_writev": 311,
        "keyctl": 250,
        "add_key": 248,
        "request_key": 249,
        "bpf": 321,
        "perf_event_open": 298,
        "init_module": 175,
        "finit_module": 313,
        "delete_module": 176,
        "kexec_load": 246,
        "kexec_file_load": 320,
        "reboot": 169,
        "swapon": 167,
        "swapoff": 168,
        "acct": 163,
        "syslog": 103,
        "quotactl": 179,
        "userfaultfd": 323,
        "open_by_handle_at": 304,
        "name_to_handle_at": 303,
    },
    "aarch64": {
        "clone": 220,
        "clone3": 435,
        "unshare": 97,
        "setns": 268,
        "mount": 40,
        "umount2": 39,
        "pivot_root": 41,
        "chroot": 51,
        "fsopen": 430,
        "fsconfig": 431,
        "fsmount": 432,
        "fspick": 433,
        "move_mount": 429,
        "open_tree": 428,
        "mount_setattr": 442,
        "ptrace": 117,
        "process_vm_readv": 270,
        "process_vm_writev": 271,
        "keyctl": 219,
        "add_key": 217,
        "request_key": 218,
        "bpf": 280,
        "perf_event_open": 241,
        "init_module": 105,
        "finit_module": 273,
        "delete_module": 106,
        "kexec_load": 104,
        "kexec_file_load": 294,
        "reboot": 142,
        "swapon": 224,
        "swapoff": 225,
        "acct": 89,
        "syslog": 116,
        "quotactl": 60,
        "userfaultfd": 282,
        "open_by_handle_at": 265,
        "name_to_handle_at": 264,
    },
}

LD_W_ABS = 0x20
JEQ = 0x15
JGE = 0x35
JSET = 0x45
RET = 0x06
ALLOW = 0x7FFF0000
ERRNO = 0x00050000
NR, ARCH, ARG0_LOW = 0, 4, 16
"""Offsets in struct seccomp_data; the low half of args[0] comes first on little-endian machines."""


class Unsupported(Exception):
    """No syscall table for this machine: the sandbox runs without a filter."""


def machine() -> str:
    """The architecture this interpreter's syscalls arrive as (a 32-bit Python on x86_64 is not x86_64)."""
    name = platform.machine()
    return name if struct.calcsize("P") == 8 else f"{name} (32-bit Python)"


def unavailable_reason(name: str | None = None) -> str | None:
    name = name or machine()
    return None if name in SYSCALLS else f"no seccomp syscall table for {name}"


def program(name: str | None = None) -> bytes:
    """The filter as struct sock_filter[]: what bubblewrap's --seccomp reads."""
    name = name or machine()
    if (reason := unavailable_reason(name)) is not None:
        raise Unsupported(reason)
    numbers = SYSCALLS[name]
    code: list[tuple] = [
        (LD_W_ABS, ARCH),
        (JEQ, AUDIT_ARCH[name], None, "deny"),
        (LD_W_ABS, NR),
    ]
    if name == "x86_64":
        code.append((JGE, X32_SYSCALL_BIT, "deny", None))
    code += [(JEQ, numbers["clone3"], "enosys", None), (JEQ, numbers["clone"], "clone", None)]
    code += [(JEQ, numbers[call], "deny", None) for call in DENIED]
    code += [
        (RET, ALLOW),
        "clone",
        (LD_W_ABS, ARG0_LOW),
        (JSET, CLONE_NEW_FLAGS, "deny", None),
        (RET, ALLOW),
        "deny",
        (RET, ERRNO | errno.EPERM),
        "enosys",
        (RET, ERRNO | errno.ENOSYS),
    ]
    return assemble(code)


def assemble(code: list[tuple | str]) -> bytes:
    """Packs instructions, resolving jump labels (strings) into the forward offsets BPF wants."""
    labels: dict[str, int] = {}
    instructions: list[tuple] = []
    for item in code:
        if isinstance(item, str):
            labels[item] = len(instructions)
        else:
            instructions.append(item)
    packed = []
    for index, (op, k, *targets) in enumerate(instructions):
        jt, jf = (labels[t] - index - 1 if t else 0 for t in (targets or (None, None)))
        assert 0 <= jt < 256 and 0 <= jf < 256, "a BPF jump reaches at most 255 instructions ahead"
        packed.append(struct.pack("=HBBI", op, jt, jf, k))
    return b"".join(packed)
