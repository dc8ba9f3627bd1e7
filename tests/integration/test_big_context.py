"""A file context of hundreds of megabytes reaches the REPL without ever sitting in the host
process: the host's peak memory with it stays near its peak with a tiny one."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.big_context import LINE, log_file, run_case
from tests.conftest import need_backend

CONTEXT_MB = 200
HOST_SLACK_MB = 100
"""Far below one copy of the context: holding it once would cost 200 MB."""


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return log_file(CONTEXT_MB, tmp_path_factory.mktemp("big"))


@pytest.mark.parametrize("kind", ["local", "docker"])
def test_a_big_file_context_is_searched_without_the_host_holding_it(
    kind: str, big_file: Path, tmp_path: Path
) -> None:
    need_backend(kind)
    tiny = tmp_path / "tiny.log"
    tiny.write_text(LINE % (0, "INFO", 424242) * 10)
    small = run_case(tiny, kind)
    big = run_case(big_file, kind)
    assert big["characters"] == big_file.stat().st_size
    assert big["grep_hits"] == 1
    assert big["errors"] == sum(1 for line in big_file.open() if " ERROR " in line)
    assert big["peak_rss_mb"] - small["peak_rss_mb"] < HOST_SLACK_MB, (small, big)
