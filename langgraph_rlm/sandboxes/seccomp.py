"""The `local` sandbox's seccomp filter: at least as strict as Docker's default profile.

bubblewrap's namespaces hold only if code inside can neither make new ones (a user namespace
hands back every capability within it) nor reach past them: mounts, ptrace, keyrings, bpf,
io_uring, kernel modules. Every call Docker's default profile refuses to a container without
capabilities is refused here too (tests/docker_seccomp_default.toml; the README's security model
lists where the two differ). The classic-BPF program is built here, so no libseccomp is needed;
bubblewrap installs it just before it starts the worker, and every process the worker starts
inherits it.
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
    "kcmp",
    "pidfd_getfd",
    "process_madvise",
    "fanotify_init",
    "quotactl_fd",
    "lookup_dcookie",
    "clock_settime",
    "settimeofday",
    "sethostname",
    "setdomainname",
    "vhangup",
    "mbind",
    "get_mempolicy",
    "set_mempolicy",
    "set_mempolicy_home_node",
    "migrate_pages",
    "move_pages",
    "lsm_get_self_attr",
    "lsm_set_self_attr",
    "lsm_list_modules",
)
"""Refused with EPERM, whatever the arguments."""
DENIED_X86_64 = ("iopl", "ioperm", "sysfs", "ustat")
"""Refused with EPERM too; calls only x86_64 has."""
UNIMPLEMENTED = ("clone3", "io_uring_setup", "io_uring_enter", "io_uring_register")
"""Answered ENOSYS, as a kernel without them answers: glibc then makes threads with clone (whose
flags this filter can read, unlike clone3's), and programs using io_uring (liburing, libuv, tokio...)
fall back to plain reads, writes and epoll, as they must on kernels built without it."""
NEWEST = 466
"""removexattrat (Linux 6.13), the newest call Docker's profile names. A call numbered above it is
answered ENOSYS, as runc does under that profile: a call added to the kernel later stays refused
until it has been looked at, and libc falls back as on an older kernel."""
SOCKET_FAMILIES_DENIED = (38, 40)
"""AF_ALG (the kernel's crypto API, a recurring source of kernel bugs) and AF_VSOCK (which reaches
a virtual machine's host past the network namespace), as Docker refuses them."""
PERSONAS = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)
"""The personality() values Docker allows: PER_LINUX, PER_LINUX32, with or without UNAME26, and the
query; other flags (READ_IMPLIES_EXEC, ADDR_NO_RANDOMIZE...) weaken the process's own defences."""

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
        "socket": 41,
        "personality": 135,
        "io_uring_setup": 425,
        "io_uring_enter": 426,
        "io_uring_register": 427,
        "kcmp": 312,
        "pidfd_getfd": 438,
        "process_madvise": 440,
        "fanotify_init": 300,
        "quotactl_fd": 443,
        "lookup_dcookie": 212,
        "clock_settime": 227,
        "settimeofday": 164,
        "sethostname": 170,
        "setdomainname": 171,
        "vhangup": 153,
        "mbind": 237,
        "get_mempolicy": 239,
        "set_mempolicy": 238,
        "set_mempolicy_home_node": 450,
        "migrate_pages": 256,
        "move_pages": 279,
        "lsm_get_self_attr": 459,
        "lsm_set_self_attr": 460,
        "lsm_list_modules": 461,
        "iopl": 172,
        "ioperm": 173,
        "sysfs": 139,
        "ustat": 136,
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
        "socket": 198,
        "personality": 92,
        "io_uring_setup": 425,
        "io_uring_enter": 426,
        "io_uring_register": 427,
        "kcmp": 272,
        "pidfd_getfd": 438,
        "process_madvise": 440,
        "fanotify_init": 262,
        "quotactl_fd": 443,
        "lookup_dcookie": 18,
        "clock_settime": 112,
        "settimeofday": 170,
        "sethostname": 161,
        "setdomainname": 162,
        "vhangup": 58,
        "mbind": 235,
        "get_mempolicy": 236,
        "set_mempolicy": 237,
        "set_mempolicy_home_node": 450,
        "migrate_pages": 238,
        "move_pages": 239,
        "lsm_get_self_attr": 459,
        "lsm_set_self_attr": 460,
        "lsm_list_modules": 461,
    },
}

LD_W_ABS = 0x20
JEQ = 0x15
JGT = 0x25
JGE = 0x35
JSET = 0x45
RET = 0x06
ALLOW = 0x7FFF0000
ERRNO = 0x00050000
NR, ARCH, ARG0_LOW = 0, 4, 16
"""Offsets in struct seccomp_data; the low half of args[0] comes first on little-endian machines.
The low half is all clone's namespace flags, socket's family and personality's persona use."""


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
    code: list[tuple | str] = [
        (LD_W_ABS, ARCH),
        (JEQ, AUDIT_ARCH[name], None, "deny"),
        (LD_W_ABS, NR),
    ]
    if name == "x86_64":
        code.append((JGE, X32_SYSCALL_BIT, "deny", None))
    denied = DENIED + (DENIED_X86_64 if name == "x86_64" else ())
    code.append((JGT, NEWEST, "enosys", None))
    code += [(JEQ, numbers[call], "enosys", None) for call in UNIMPLEMENTED]
    code += [(JEQ, numbers[call], call, None) for call in ("clone", "socket", "personality")]
    code += [(JEQ, numbers[call], "deny", None) for call in denied]
    code += [
        (RET, ALLOW),
        "clone",
        (LD_W_ABS, ARG0_LOW),
        (JSET, CLONE_NEW_FLAGS, "deny", "allow"),
        "socket",
        (LD_W_ABS, ARG0_LOW),
        *[(JEQ, family, "deny", None) for family in SOCKET_FAMILIES_DENIED],
        (RET, ALLOW),
        "personality",
        (LD_W_ABS, ARG0_LOW),
        *[(JEQ, persona, "allow", None) for persona in PERSONAS],
        "deny",
        (RET, ERRNO | errno.EPERM),
        "enosys",
        (RET, ERRNO | errno.ENOSYS),
        "allow",
        (RET, ALLOW),
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
