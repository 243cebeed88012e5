"""XA transactions: held on the DR side from the source's XA PREPARE until its XA COMMIT/ROLLBACK.

A prepared XA transaction is not yet a change: the source may still roll it back, long after other
transactions committed. Its rows are therefore stored (not applied) in the task's `xa_pending` table,
in the same DR-side transaction as the checkpoint past the PREPARE, and applied, in the transaction
of the checkpoint past the XA COMMIT, or dropped at XA ROLLBACK. A crash anywhere in between resumes
exactly: the pending rows are as durable as the checkpoint that skipped over them.
"""

from __future__ import annotations

import json

import pymysql

from engine.checkpoint import META
from engine.errors import Unreplicable
from engine.stream import RowChange, Transaction

XA_PIECE_BYTES = 512 * 1024  # per stored row: well below any max_allowed_packet


def _encode(changes: list) -> bytes:
    return json.dumps(
        [[c.kind, c.schema, c.table, c.rows] for c in changes if isinstance(c, RowChange)],
        separators=(",", ":"),
    ).encode()


def _decode(blob: bytes) -> list[RowChange]:
    out: list[RowChange] = []
    for kind, schema, table, rows in json.loads(blob):
        if kind == "update":
            out.append(RowChange(kind, schema, table, [(tuple(b), tuple(a)) for b, a in rows]))
        else:
            out.append(RowChange(kind, schema, table, [tuple(r) for r in rows]))
    return out


def hold(cur: pymysql.cursors.Cursor, task: str, txn: Transaction) -> None:
    """Store a prepared XA transaction's changes until the source decides."""
    assert txn.xa is not None
    xid = txn.xa[1]
    blob = _encode(txn.changes)
    cur.execute(f"DELETE FROM {META}.`xa_pending` WHERE task = %s AND xid = %s", (task, xid))
    pieces = [blob[i : i + XA_PIECE_BYTES] for i in range(0, len(blob), XA_PIECE_BYTES)] or [b""]
    for n, piece in enumerate(pieces):
        cur.execute(
            f"INSERT INTO {META}.`xa_pending` (task, xid, piece, gtid, changes) VALUES (%s, %s, %s, %s, %s)",
            (task, xid, n, txn.gtid, piece),
        )


def release(cur: pymysql.cursors.Cursor, task: str, txn: Transaction) -> list[RowChange]:
    """The changes an XA COMMIT makes (removed from the pending table); [] for an XA ROLLBACK."""
    assert txn.xa is not None
    decision, xid = txn.xa
    cur.execute(
        f"SELECT changes FROM {META}.`xa_pending` WHERE task = %s AND xid = %s ORDER BY piece FOR UPDATE",
        (task, xid),
    )
    pieces = [row[0] for row in cur.fetchall()]
    cur.execute(f"DELETE FROM {META}.`xa_pending` WHERE task = %s AND xid = %s", (task, xid))
    if decision == "rollback":
        return []
    if not pieces:
        raise Unreplicable(
            f"the service database committed XA transaction {xid} (GTID {txn.gtid or 'unknown'}) whose XA "
            "PREPARE this task never read: it was prepared before the task's start position, so its rows "
            "are not on the DR side. Compare the databases (drs compare), repair the DR side, then skip "
            "this event (drs task skip)"
        )
    return _decode(b"".join(pieces))


def pending(conn: pymysql.connections.Connection, task: str) -> list[tuple[str, str | None]]:
    """(xid, gtid) of the XA transactions held for `task`."""
    with conn.cursor() as cur:
        cur.execute(f"SELECT DISTINCT xid, gtid FROM {META}.`xa_pending` WHERE task = %s ORDER BY xid", (task,))
        return [(x.decode() if isinstance(x, bytes) else x, g) for x, g in cur.fetchall()]
