"""Calls the `local` sandbox's seccomp filter must refuse, and ordinary work it must let through.

The source runs as it is, as a REPL cell in a real sandbox and in a host process under the bare
filter. Each probe is chosen to give another answer without the filter (success, EBADF, EINVAL,
EFAULT...; bpf aside where the kernel refuses it to unprivileged users), so EPERM or ENOSYS
comes from the filter. The syscall numbers are
written out here, not taken from the filter's own table, so a wrong number there shows.
"""

import ctypes
import errno
import mmap
import os
import platform
import subprocess
import threading

PROBE_NUMBERS = {
    "x86_64": {"clone": 56, "clone3": 435, "keyctl": 250, "bpf": 321, "getpid": 39},
    "aarch64": {"clone": 220, "clone3": 435, "keyctl": 219, "bpf": 280, "getpid": 172},
}
CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWNET, SIGCHLD = 0x20000, 0x10000000, 0x40000000, 17
X32_SYSCALL_BIT = 0x40000000

EXPECTED = {
    "unshare user+net": "EPERM",
    "setns": "EPERM",
    "mount": "EPERM",
    "ptrace traceme": "EPERM",
    "keyctl": "EPERM",
    "bpf": "EPERM",
    "clone3": "ENOSYS",
    "clone newns": "EPERM",
    "thread": "ok",
    "subprocess ls": "ok",
    "fork": "ok",
}
EXPECTED_X86_64 = {"x32 getpid": "EPERM", "i386 getpid": "EPERM"}


def probe() -> dict[str, str]:
    """What each call gave: "ok", or the name of its errno."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    number = PROBE_NUMBERS[platform.machine()]

    def failure(result: int) -> int:
        return 0 if result != -1 else ctypes.get_errno()

    def named(code: int) -> str:
        return "ok" if code == 0 else errno.errorcode.get(code, f"status {code}")

    def in_child(call) -> str:
        """Runs `call` in a forked child: what it may do must not touch this process."""
        pid = os.fork()
        if pid == 0:
            os._exit(call())
        return named(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))

    def clone(flags: int) -> str:
        child = libc.syscall(number["clone"], flags, 0, 0, 0, 0)
        if child == 0:
            os._exit(0)
        if child > 0:
            os.waitpid(child, 0)
        return named(failure(child))

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
    if platform.machine() == "x86_64":
        found["x32 getpid"] = named(failure(libc.syscall(X32_SYSCALL_BIT | number["getpid"])))
        found["i386 getpid"] = in_child(i386_getpid)
    found["unshare user+net"] = in_child(lambda: failure(libc.unshare(CLONE_NEWUSER | CLONE_NEWNET)))
    return found


def expected() -> dict[str, str]:
    return {**EXPECTED, **(EXPECTED_X86_64 if platform.machine() == "x86_64" else {})}
