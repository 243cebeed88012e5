"""The checkpoint a DR task keeps on the DR server, written in the same transaction as the data.

Because each applied batch and its checkpoint commit together, a crash at any instant leaves the DR
side exactly at some checkpoint: resuming from it neither loses nor repeats a change. DDL cannot be
inside a transaction, so a DDL is bracketed by a `ddl_pending` mark (see Applier.apply_ddl).
Objects held back from the standby (triggers) are kept here too, for promote.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pymysql

from engine.connect import META_DATABASE, BinlogPosition, quote_ident

META = quote_ident(META_DATABASE)

_DDL = (
    f"CREATE DATABASE IF NOT EXISTS {META} CHARACTER SET utf8mb4",
    f"""CREATE TABLE IF NOT EXISTS {META}.`checkpoint` (
        task VARCHAR(64) NOT NULL PRIMARY KEY,
        phase VARCHAR(16) NOT NULL,
        binlog_file VARCHAR(255) NULL,
        binlog_pos BIGINT UNSIGNED NULL,
        gtid TEXT NULL,
        ddl_pending TINYINT NOT NULL DEFAULT 0,
        source_ts BIGINT NOT NULL DEFAULT 0,
        info LONGTEXT NULL,
        updated_at DATETIME(6) NOT NULL
    ) ENGINE=InnoDB""",
    f"""CREATE TABLE IF NOT EXISTS {META}.`deferred_object` (
        task VARCHAR(64) NOT NULL,
        kind VARCHAR(16) NOT NULL,
        db VARCHAR(64) NOT NULL,
        name VARCHAR(64) NOT NULL,
        definition LONGTEXT NOT NULL,
        seq BIGINT NOT NULL AUTO_INCREMENT,
        PRIMARY KEY (task, kind, db, name),
        UNIQUE KEY (seq)
    ) ENGINE=InnoDB""",
    # XA transactions the source has prepared but not yet committed or rolled back: their changes,
    # in pieces of at most XA_PIECE_BYTES, until the decision arrives (see engine/xa.py)
    f"""CREATE TABLE IF NOT EXISTS {META}.`xa_pending` (
        task VARCHAR(64) NOT NULL,
        xid VARCHAR(400) CHARACTER SET ascii NOT NULL,
        piece INT NOT NULL,
        gtid TEXT NULL,
        changes LONGBLOB NOT NULL,
        PRIMARY KEY (task, xid, piece)
    ) ENGINE=InnoDB""",
)


@dataclass(frozen=True)
class TargetCheckpoint:
    phase: str  # "initial" (copy not finished) | "incremental"
    position: BinlogPosition | None
    ddl_pending: bool
    source_ts: int
    info: dict[str, Any]


def ensure_meta(conn: pymysql.connections.Connection) -> None:
    with conn.cursor() as cur:
        for statement in _DDL:
            cur.execute(statement)
        # `seq` (the order objects were recorded in) came later: promote creates triggers in that
        # order, which is the order they fire in (and what FOLLOWS/PRECEDES clauses need)
        cur.execute(
            "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s "
            "AND TABLE_NAME = 'deferred_object' AND COLUMN_NAME = 'seq'",
            (META_DATABASE,),
        )
        if cur.fetchone()[0] == 0:
            cur.execute(f"ALTER TABLE {META}.`deferred_object` ADD COLUMN seq BIGINT NOT NULL AUTO_INCREMENT, ADD UNIQUE KEY (seq)")


def read_checkpoint(conn: pymysql.connections.Connection, task: str) -> TargetCheckpoint | None:
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT phase, binlog_file, binlog_pos, gtid, ddl_pending, source_ts, info FROM {META}.`checkpoint` WHERE task = %s",
            (task,),
        )
        row = cur.fetchone()
    if row is None:
        return None
    phase, file, pos, gtid, pending, ts, info = (v.decode() if isinstance(v, bytes) else v for v in row)
    return TargetCheckpoint(
        phase=phase,
        position=BinlogPosition(file, int(pos), gtid) if file else None,
        ddl_pending=bool(pending),
        source_ts=int(ts or 0),
        info=json.loads(info) if info else {},
    )


def write_checkpoint(
    cur: pymysql.cursors.Cursor,
    task: str,
    phase: str,
    position: BinlogPosition | None,
    *,
    ddl_pending: bool = False,
    source_ts: int = 0,
    info: dict[str, Any] | None = None,
) -> None:
    """Upsert the checkpoint row; the caller commits it together with the data it belongs to."""
    cur.execute(*_checkpoint_statement(task, phase, position, ddl_pending, source_ts, info))


def checkpoint_sql(
    conn: pymysql.connections.Connection, task: str, phase: str, position: BinlogPosition | None, *, source_ts: int = 0
) -> str:
    """write_checkpoint's statement as text (for a batch sent in one query)."""
    query, args = _checkpoint_statement(task, phase, position, False, source_ts, None)
    with conn.cursor() as cur:
        return cur.mogrify(query, args)


def _checkpoint_statement(
    task: str, phase: str, position: BinlogPosition | None, ddl_pending: bool, source_ts: int, info: dict[str, Any] | None
) -> tuple[str, tuple]:
    return (
        f"INSERT INTO {META}.`checkpoint` (task, phase, binlog_file, binlog_pos, gtid, ddl_pending, source_ts, info, updated_at) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, UTC_TIMESTAMP(6)) ON DUPLICATE KEY UPDATE phase=VALUES(phase), "
        "binlog_file=VALUES(binlog_file), binlog_pos=VALUES(binlog_pos), gtid=VALUES(gtid), "
        "ddl_pending=VALUES(ddl_pending), source_ts=VALUES(source_ts), info=COALESCE(VALUES(info), info), "
        "updated_at=VALUES(updated_at)",
        (
            task,
            phase,
            position.file if position else None,
            position.pos if position else None,
            position.gtid if position else None,
            int(ddl_pending),
            source_ts,
            json.dumps(info) if info is not None else None,
        ),
    )


def delete_checkpoint(conn: pymysql.connections.Connection, task: str) -> None:
    with conn.cursor() as cur:
        cur.execute(f"DELETE FROM {META}.`checkpoint` WHERE task = %s", (task,))
        cur.execute(f"DELETE FROM {META}.`deferred_object` WHERE task = %s", (task,))
        cur.execute(f"DELETE FROM {META}.`xa_pending` WHERE task = %s", (task,))


def save_deferred(
    cur: pymysql.cursors.Cursor, task: str, kind: str, db: str, name: str, definition: str
) -> None:
    cur.execute(
        f"REPLACE INTO {META}.`deferred_object` (task, kind, db, name, definition) VALUES (%s, %s, %s, %s, %s)",
        (task, kind, db, name, definition),
    )


def drop_deferred(cur: pymysql.cursors.Cursor, task: str, kind: str, db: str | None, name: str) -> None:
    if db is None:
        cur.execute(
            f"DELETE FROM {META}.`deferred_object` WHERE task=%s AND kind=%s AND name=%s", (task, kind, name)
        )
    else:
        cur.execute(
            f"DELETE FROM {META}.`deferred_object` WHERE task=%s AND kind=%s AND db=%s AND name=%s",
            (task, kind, db, name),
        )


def load_deferred(conn: pymysql.connections.Connection, task: str) -> list[tuple[str, str, str, str]]:
    """(kind, db, name, definition) of every object held back from the standby, in recording order."""
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT kind, db, name, definition FROM {META}.`deferred_object` WHERE task = %s ORDER BY kind, seq",
            (task,),
        )
        return [tuple(v.decode() if isinstance(v, bytes) else v for v in row) for row in cur.fetchall()]  # type: ignore[misc]
