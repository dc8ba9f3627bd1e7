"""Calls the `local` sandbox's seccomp filter must refuse, and ordinary work it must let through.

The source runs as it is, as a REPL cell in a real sandbox and in a host process under the bare
filter. Each probe is chosen to give another answer without the filter (success, EBADF, EINVAL,
EFAULT, ESRCH...), so EPERM or ENOSYS comes from the filter. Some calls the kernel itself refuses
to code without capabilities (bpf, sethostname, setdomainname, vhangup): in the sandbox only the
host run, as root, tells the filter's answer from the kernel's. The syscall numbers are written
out here, not taken from the filter's own table, so a wrong number there shows.
"""

import ctypes
import errno
import mmap
import os
import platform
import socket
import subprocess
import threading

PROBE_NUMBERS = {
    "x86_64": {
        "clone": 56,
        "clone3": 435,
        "keyctl": 250,
        "bpf": 321,
        "getpid": 39,
        "personality": 135,
        "socket": 41,
        "vhangup": 153,
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
        "mbind": 237,
        "get_mempolicy": 239,
        "set_mempolicy": 238,
        "set_mempolicy_home_node": 450,
        "migrate_pages": 256,
        "move_pages": 279,
        "lsm_get_self_attr": 459,
        "lsm_set_self_attr": 460,
        "lsm_list_modules": 461,
        "open_tree_attr": 467,
        "iopl": 172,
        "ioperm": 173,
        "sysfs": 139,
        "ustat": 136,
    },
    "aarch64": {
        "clone": 220,
        "clone3": 435,
        "keyctl": 219,
        "bpf": 280,
        "getpid": 172,
        "personality": 92,
        "socket": 198,
        "vhangup": 58,
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
        "mbind": 235,
        "get_mempolicy": 236,
        "set_mempolicy": 237,
        "set_mempolicy_home_node": 450,
        "migrate_pages": 238,
        "move_pages": 239,
        "lsm_get_self_attr": 459,
        "lsm_set_self_attr": 460,
        "lsm_list_modules": 461,
        "open_tree_attr": 467,
    },
}
CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWNET, SIGCHLD = 0x20000, 0x10000000, 0x40000000, 17
X32_SYSCALL_BIT = 0x40000000
AF_ALG, AF_VSOCK = 38, 40
READ_IMPLIES_EXEC, PERSONA_QUERY = 0x0400000, 0xFFFFFFFF
FAN_REPORT_FID = 0x200

REFUSED = {
    "io_uring_setup": ((1, None), "ENOSYS"),
    "io_uring_enter": ((-1, 0, 0, 0, None, 0), "ENOSYS"),
    "io_uring_register": ((-1, 0, None, 0), "ENOSYS"),
    "kcmp": ((0, 0, 0, 0, 0), "EPERM"),
    "pidfd_getfd": ((-1, 0, 0), "EPERM"),
    "process_madvise": ((-1, None, 0, 0, 0), "EPERM"),
    "fanotify_init": ((FAN_REPORT_FID, 0xFFFFFFFF), "EPERM"),
    "quotactl_fd": ((-1, 0, 0, None), "EPERM"),
    "lookup_dcookie": ((0, None, 0), "EPERM"),
    "clock_settime": ((100, None), "EPERM"),
    "settimeofday": ((1, None), "EPERM"),
    "sethostname": ((None, -1), "EPERM"),
    "setdomainname": ((None, -1), "EPERM"),
    "mbind": ((0, 0, 0, None, 0, 0xFFFF), "EPERM"),
    "get_mempolicy": ((None, None, 0, None, 0), "EPERM"),
    "set_mempolicy": ((0, None, 0), "EPERM"),
    "set_mempolicy_home_node": ((0, 0, 0, 1), "EPERM"),
    "migrate_pages": ((-1, 0, None, None), "EPERM"),
    "move_pages": ((0, 0, None, None, None, 0xFFFF), "EPERM"),
    "lsm_get_self_attr": ((0, None, None, 0), "EPERM"),
    "lsm_set_self_attr": ((0, None, 0, 0), "EPERM"),
    "lsm_list_modules": ((None, None, 1), "EPERM"),
    "open_tree_attr": ((-1, None, 0, None, 0), "ENOSYS"),
}
"""Plain calls: arguments the kernel answers otherwise (harmlessly, even to root), and the filter's answer."""
REFUSED_X86_64 = {
    "iopl": ((4,), "EPERM"),
    "ioperm": ((0, 0, 1), "EPERM"),
    "sysfs": ((99,), "EPERM"),
    "ustat": ((0, None), "EPERM"),
}

EXPECTED = {
    "unshare user+net": "EPERM",
    "setns": "EPERM",
    "mount": "EPERM",
    "ptrace traceme": "EPERM",
    "keyctl": "EPERM",
    "bpf": "EPERM",
    "clone3": "ENOSYS",
    "clone newns": "EPERM",
    "vhangup": "EPERM",
    "socket AF_ALG": "EPERM",
    "socket AF_VSOCK": "EPERM",
    "personality READ_IMPLIES_EXEC": "EPERM",
    **{call: answer for call, (_, answer) in REFUSED.items()},
    "personality query": "ok",
    "socket AF_UNIX": "ok",
    "thread": "ok",
    "subprocess ls": "ok",
    "fork": "ok",
}
EXPECTED_X86_64 = {
    "x32 getpid": "EPERM",
    "i386 getpid": "EPERM",
    **{call: answer for call, (_, answer) in REFUSED_X86_64.items()},
}


def probe() -> dict[str, str]:
    """What each call gave: "ok", or the name of its errno."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    number = PROBE_NUMBERS[platform.machine()]

    def failure(result: int) -> int:
        return 0 if result != -1 else ctypes.get_errno()

    def named(code: int) -> str:
        return "ok" if code == 0 else errno.errorcode.get(code, f"status {code}")

    def call(name: str, *arguments) -> int:
        """The raw call, each integer passed as a full register (ctypes would pass a C int)."""
        values = (ctypes.c_long(a) if isinstance(a, int) else a for a in arguments)
        return failure(libc.syscall(number[name], *values))

    def in_child(work) -> str:
        """Runs `work` in a forked child with no controlling terminal: what it may do must not touch
        this process or the terminal the tests run in."""
        pid = os.fork()
        if pid == 0:
            os.setsid()
            os._exit(work())
        return named(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))

    def clone(flags: int) -> str:
        child = libc.syscall(number["clone"], flags, 0, 0, 0, 0)
        if child == 0:
            os._exit(0)
        if child > 0:
            os.waitpid(child, 0)
        return named(failure(child))

    def open_socket(family: int, kind: int) -> str:
        try:
            socket.socket(family, kind).close()
        except OSError as error:
            return named(error.errno)
        return "ok"

    def i386_getpid() -> int:
        """An i386 call from this 64-bit process (int 0x80), whose numbers are another table."""
        code = b"\xb8\x14\x00\x00\x00\xcd\x80\xc3"  # mov eax, 20 (getpid); int 0x80; ret
        memory = mmap.mmap(-1, len(code), prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
        memory.write(code)
        call = ctypes.CFUNCTYPE(ctypes.c_int)(ctypes.addressof(ctypes.c_char.from_buffer(memory)))
        result = call()
        return 0 if result >= 0 else -result

    found = {}
    ran = []
    worker = threading.Thread(target=lambda: ran.append(True))
    worker.start()
    worker.join()
    found["thread"] = "ok" if ran else "did not run"
    listing = subprocess.run(["ls", "/"], capture_output=True, text=True)
    found["subprocess ls"] = "ok" if listing.returncode == 0 and "usr" in listing.stdout else listing.stderr
    found["fork"] = in_child(lambda: 0)
    found["setns"] = named(failure(libc.setns(-1, 0)))
    found["mount"] = named(failure(libc.mount(None, None, None, 0, None)))
    found["ptrace traceme"] = in_child(lambda: failure(libc.ptrace(0, 0, None, None)))
    found["keyctl"] = named(failure(libc.syscall(number["keyctl"], 0, -1, 0)))
    found["bpf"] = named(failure(libc.syscall(number["bpf"], 5, None, 0)))
    found["clone3"] = named(failure(libc.syscall(number["clone3"], None, 0)))
    found["clone newns"] = clone(CLONE_NEWNS | SIGCHLD)
    found["vhangup"] = in_child(lambda: call("vhangup"))
    found["socket AF_ALG"] = open_socket(AF_ALG, socket.SOCK_SEQPACKET)
    found["socket AF_VSOCK"] = open_socket(AF_VSOCK, socket.SOCK_STREAM)
    found["socket AF_UNIX"] = open_socket(socket.AF_UNIX, socket.SOCK_STREAM)
    found["personality READ_IMPLIES_EXEC"] = in_child(lambda: call("personality", READ_IMPLIES_EXEC))
    found["personality query"] = named(call("personality", PERSONA_QUERY))
    plain = {**REFUSED, **(REFUSED_X86_64 if platform.machine() == "x86_64" else {})}
    found.update({name: named(call(name, *arguments)) for name, (arguments, _) in plain.items()})
    if platform.machine() == "x86_64":
        found["x32 getpid"] = named(failure(libc.syscall(X32_SYSCALL_BIT | number["getpid"])))
        found["i386 getpid"] = in_child(i386_getpid)
    found["unshare user+net"] = in_child(lambda: failure(libc.unshare(CLONE_NEWUSER | CLONE_NEWNET)))
    return found


def expected() -> dict[str, str]:
    return {**EXPECTED, **(EXPECTED_X86_64 if platform.machine() == "x86_64" else {})}
