"""The conformance suite, part two: attacks on every isolating backend; each must fail from inside."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
from pathlib import Path

from tests.conftest import NoSubCalls


async def run(session, code: str):
    return await session.run(code, contexts=[], subcalls=NoSubCalls(), timeout=30, output_limit=20_000)


async def test_a_file_beside_an_allowed_context_cannot_be_read(
    isolated_backend, open_session, tmp_path: Path
):
    context = tmp_path / "context.txt"
    context.write_text("public")
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    session = await open_session(isolated_backend, files=(context,))
    result = await run(
        session,
        f"print(load_file({str(context)!r}), peek(0, 6))\n"
        "import os\n"
        f"try:\n    print(sorted(os.listdir({str(tmp_path)!r})))\nexcept OSError:\n    print('no such folder')\n"
        f"try:\n    open({str(secret)!r}).read()\nexcept OSError as e:\n    print('open failed', type(e).__name__)\n"
        f"try:\n    load_file({str(secret)!r})\nexcept PermissionError as e:\n    print('load_file refused')\n",
    )
    assert result.error is None, result.error
    assert "public" in result.stdout
    assert "secret.txt" not in result.stdout
    assert "open failed" in result.stdout
    assert "load_file refused" in result.stdout
    assert "TOP-SECRET" not in result.stdout


async def test_symlinks_and_dotdot_cannot_widen_load_file(backend, open_session, tmp_path: Path):
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    (tmp_path / "secret.txt").write_text("TOP-SECRET")
    (allowed / "link.txt").symlink_to(tmp_path / "secret.txt")
    session = await open_session(backend, folders=(allowed,))
    for path in (allowed / "link.txt", allowed / ".." / "secret.txt", Path("/etc/passwd")):
        result = await run(session, f"load_file({str(path)!r})")
        assert "PermissionError" in result.error, path
        assert "TOP-SECRET" not in result.stdout


async def test_the_host_environment_is_not_visible(backend, open_session, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-should-never-leak")
    monkeypatch.setenv("RLM_TEST_SECRET", "hunter2")
    session = await open_session(backend)
    result = await run(
        session,
        "import os\nprint(sorted(os.environ))\nprint(open('/proc/self/environ','rb').read())\n"
        "print(open('/proc/1/environ','rb').read() if os.access('/proc/1/environ', os.R_OK) else 'no pid 1 env')",
    )
    assert "sk-should-never-leak" not in result.stdout + (result.error or "")
    assert "hunter2" not in result.stdout + (result.error or "")
    assert "OPENAI_API_KEY" not in result.stdout


async def test_no_network_not_even_loopback(isolated_backend, open_session):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    accepted: list[object] = []
    listener.settimeout(5)

    def accept() -> None:
        with contextlib.suppress(OSError):
            accepted.append(listener.accept())

    thread = threading.Thread(target=accept)
    thread.start()
    session = await open_session(isolated_backend)
    result = await run(
        session,
        "import socket\n"
        f"try:\n    socket.create_connection(('127.0.0.1', {port}), timeout=3)\n    print('CONNECTED')\n"
        "except OSError as e:\n    print('refused', type(e).__name__)\n"
        "try:\n    socket.getaddrinfo('pypi.org', 443)\n    print('RESOLVED')\nexcept OSError:\n    print('no dns')",
    )
    listener.close()
    thread.join()
    assert "CONNECTED" not in result.stdout and "refused" in result.stdout
    assert "no dns" in result.stdout
    assert accepted == []


async def test_writes_to_host_paths_fail_and_tmp_is_private(isolated_backend, open_session, tmp_path: Path):
    marker = f"rlm-escape-{os.getpid()}"
    session = await open_session(isolated_backend)
    result = await run(
        session,
        "import os\n"
        f"open('/tmp/{marker}', 'w').write('inside')\n"
        f"print(os.path.exists('/tmp/{marker}'))\n"
        f"for target in ['/usr/{marker}', {str(tmp_path / marker)!r}, '/etc/{marker}', '/opt/rlm/{marker}']:\n"
        "    try:\n        open(target, 'w').write('x')\n        print('WROTE', target)\n"
        "    except OSError as e:\n        print('denied', target)\n",
    )
    assert result.error is None, result.error
    assert "WROTE" not in result.stdout
    assert not Path(f"/tmp/{marker}").exists()
    assert not (tmp_path / marker).exists()


async def test_the_worker_runs_without_root_privileges(isolated_backend, open_session):
    session = await open_session(isolated_backend)
    result = await run(session, "import os\nprint(os.getuid() != 0 or open('/proc/self/status').read())")
    status = result.stdout
    assert status.strip() == "True" or "CapEff:\t0000000000000000" in status


async def test_a_background_process_of_a_successful_cell_ends_with_the_cell(isolated_backend, open_session):
    session = await open_session(isolated_backend)
    started = await run(
        session, "import subprocess\nchild = subprocess.Popen(['sleep', '600'])\nprint(child.poll())"
    )
    assert started.error is None and started.stdout.strip() == "None"
    after = await run(session, "import os\nprint(os.path.exists(f'/proc/{child.pid}'))")
    assert after.stdout.strip() == "False", "the cell's child outlived the cell"


async def test_no_capabilities_and_no_new_privileges_inside(isolated_backend, open_session):
    session = await open_session(isolated_backend)
    result = await run(
        session,
        "status = dict(line.split(':\\t') for line in open('/proc/self/status').read().splitlines() if ':\\t' in line)\n"
        "print(status['CapEff'].strip(), status['CapPrm'].strip(), status['NoNewPrivs'].strip())",
    )
    assert result.stdout.split() == ["0000000000000000", "0000000000000000", "1"]


async def test_the_docker_container_is_created_hardened(open_session):
    session = await open_session("docker", memory_mb=512, max_processes=32)
    container = session.sandbox.container
    await asyncio.to_thread(container.reload)
    host = container.attrs["HostConfig"]
    assert host["CapDrop"] == ["ALL"] and not host.get("CapAdd")
    assert "no-new-privileges" in host["SecurityOpt"]
    assert host["ReadonlyRootfs"] is True and host["NetworkMode"] == "none"
    assert host["Privileged"] is False and host["PidsLimit"] == 32
    assert host["Memory"] > 512 * 1024 * 1024 and host["Init"] is True
    assert container.attrs["Config"]["User"] == "65534:65534"
    assert all(mount["RW"] is False for mount in container.attrs["Mounts"] if mount["Type"] == "bind")
