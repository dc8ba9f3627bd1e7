"""Thread leases in PostgreSQL, so `rlm` processes on several machines sharing one database
(`--db`) run a thread one at a time."""

from __future__ import annotations

from langgraph_rlm.extras import POSTGRES, require
from langgraph_rlm.persistence.leases import LeaseTable


class PostgresLeaseTable(LeaseTable):
    NOW = "extract(epoch FROM clock_timestamp())::double precision"
    MARK = "%s"
    SCHEMA = (
        "CREATE TABLE IF NOT EXISTS rlm_thread_leases (thread text PRIMARY KEY, lease text NOT NULL, "
        "pid integer NOT NULL, host text NOT NULL, since double precision NOT NULL, "
        "heartbeat double precision NOT NULL)"
    )
    TABLE = "rlm_thread_leases"

    def __init__(self, url: str) -> None:
        psycopg = require("psycopg", "postgres", POSTGRES)
        super().__init__(psycopg.connect(url, autocommit=True))
