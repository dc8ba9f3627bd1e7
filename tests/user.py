"""The `rlm` command as a new user runs it: the installed console script, started from a fresh
working directory holding a copy of `examples/`, with a home of its own and none of the `RLM_*`
variables the other fixtures set. Nothing here chooses a state dir, a config file or a path for
the product; only the model is named (`RLM_MODEL`, `RLM_SUB_MODEL`, `RLM_API_BASE`), since no
model service is reachable, so that a command's text stays what the README says."""

from __future__ import annotations

import fcntl
import os
import select
import shutil
import struct
import subprocess
import sys
import termios
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

EXAMPLES = Path(__file__).parents[1] / "examples"


def rlm_command() -> str:
    """The `rlm` script pip installed beside this Python (what a user's shell finds on PATH)."""
    found = shutil.which("rlm", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]))
    assert found, "the rlm command is not installed (pip install -e .)"
    return found


def clean_environment(home: Path) -> dict[str, str]:
    """The environment a newcomer's shell has: no RLM_* settings, no XDG overrides, a new home."""
    kept = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("RLM_", "XDG_", "E2B_", "LANGSMITH_", "LANGCHAIN_"))
        and not k.endswith("_API_KEY")
    }
    kept.pop("LITELLM_LOCAL_MODEL_COST_MAP", None)
    kept["HOME"] = str(home)
    kept["PATH"] = os.pathsep.join([str(Path(rlm_command()).parent), os.environ.get("PATH", "")])
    return kept


@dataclass
class User:
    """One newcomer: `cwd` is where they type, `home` their home directory."""

    cwd: Path
    home: Path
    env: dict[str, str] = field(default_factory=dict)

    def use_model(self, url: str, model: str = "openai/scripted") -> None:
        """The scripted model server, named the way a user names theirs, by environment."""
        self.env.update({"RLM_MODEL": model, "RLM_SUB_MODEL": model, "RLM_API_BASE": url})

    def start(
        self, args: list[str], env: dict[str, str] | None = None, stdin=subprocess.DEVNULL, **popen
    ) -> subprocess.Popen:
        return subprocess.Popen(
            [rlm_command(), *args],
            cwd=self.cwd,
            env={**self.env, **(env or {})},
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            **popen,
        )

    def run(
        self,
        args: list[str],
        input: bytes | str | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 300,
    ) -> subprocess.CompletedProcess:
        """`rlm ARGS` to its end; `input` is piped to its stdin (otherwise stdin is /dev/null).
        stdout and stderr come back as text (UTF-8, undecodable bytes escaped)."""
        data = input.encode() if isinstance(input, str) else input
        with self.start(
            args, env, stdin=subprocess.PIPE if data is not None else subprocess.DEVNULL
        ) as process:
            try:
                out, err = process.communicate(data, timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                raise
        return subprocess.CompletedProcess(
            process.args,
            process.returncode,
            out.decode("utf-8", "backslashreplace"),
            err.decode("utf-8", "backslashreplace"),
        )

    def run_on_terminal(
        self, args: list[str], streams: tuple[str, ...] = ("stdout", "stderr"), timeout: float = 300
    ) -> tuple[int, bytes, bytes]:
        """`rlm ARGS` with a terminal (an 80-column pseudo-terminal, TERM set, no COLUMNS) as each
        of `streams`, the others piped (stdin: /dev/null); its status, what the terminal showed,
        and what went to a piped stdout."""
        master, terminal = os.openpty()
        fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        env = {
            k: v for k, v in {**self.env, "TERM": "xterm-256color"}.items() if k not in ("COLUMNS", "LINES")
        }
        process = subprocess.Popen(
            [rlm_command(), *args],
            cwd=self.cwd,
            env=env,
            stdin=terminal if "stdin" in streams else subprocess.DEVNULL,
            stdout=terminal if "stdout" in streams else subprocess.PIPE,
            stderr=terminal if "stderr" in streams else subprocess.PIPE,
        )
        os.close(terminal)
        piped: list[bytes] = []
        reader = threading.Thread(target=lambda: piped.extend(process.communicate()))
        reader.start()
        shown = bytearray()
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline and (
                process.poll() is None or select.select([master], [], [], 0.2)[0]
            ):
                if select.select([master], [], [], 0.5)[0]:
                    try:
                        shown += os.read(master, 65536)
                    except OSError:  # EIO: every end of the terminal is closed
                        break
        finally:
            process.kill()
            reader.join(10)
            os.close(master)
        return process.wait(10), bytes(shown), (piped[0] or b"") if piped else b""

    def shell(self, command: str, timeout: float = 300) -> subprocess.CompletedProcess:
        """A command line as written in the README, run by bash in the user's directory."""
        return subprocess.run(
            ["bash", "-c", command],
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="backslashreplace",
            timeout=timeout,
        )


def new_user(tmp_path: Path) -> User:
    """A fresh working directory with a copy of `examples/`, and an empty home beside it."""
    home, cwd = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    cwd.mkdir()
    shutil.copytree(EXAMPLES, cwd / "examples")
    return User(cwd=cwd, home=home, env=clean_environment(home))
