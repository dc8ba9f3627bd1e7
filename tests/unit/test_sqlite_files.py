"""Two `rlm` processes that open a new state dir at once (or `rlm doctor`, which starts every
sandbox together) both get its SQLite files: the switch to WAL is not "database is locked"."""

from __future__ import annotations

import threading
from pathlib import Path

from langgraph_rlm.persistence.sqlite_files import connect


def test_many_first_openers_of_one_new_file_all_get_it(tmp_path: Path):
    failures: list[Exception] = []
    for trial in range(40):
        path = tmp_path / f"{trial}.sqlite"

        def open_it(path: Path = path) -> None:
            try:
                connection = connect(path)
                connection.execute("CREATE TABLE IF NOT EXISTS t (a)")
                connection.close()
            except Exception as exc:
                failures.append(exc)

        openers = [threading.Thread(target=open_it) for _ in range(8)]
        for opener in openers:
            opener.start()
        for opener in openers:
            opener.join()
    assert not failures, failures[:3]
