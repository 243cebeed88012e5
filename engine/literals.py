"""Statements that fit the DR server's max_allowed_packet.

Values travel as hex literals (X'..', `_charset X'..'`): exact for every byte, but twice the size of
the value. A row of a few MB doubles past max_allowed_packet where a native replica, which ships
binary, would still fit. Only then are the big literals rewritten as escaped binary string literals
(`_binary'..'`, `_latin1'..'`), the form mysqldump uses: about the value's own size. The session that
runs them must have backslash escapes on (see `without_no_backslash_escapes`).
"""

from __future__ import annotations

import re

COMPACT_MIN = 32 * 1024  # bytes of value: smaller literals stay hex (not worth the rewrite)
_BIG_HEX = re.compile(rb"(_[A-Za-z0-9]+ )?X'((?:[0-9a-fA-F]{2}){%d,})'" % COMPACT_MIN)

# SET for a session whose literals must read backslash escapes, whatever the server's sql_mode
WITHOUT_NO_BACKSLASH_ESCAPES = (
    "SET SESSION sql_mode = TRIM(BOTH ',' FROM REPLACE(CONCAT(',', @@SESSION.sql_mode, ','), "
    "',NO_BACKSLASH_ESCAPES,', ','))"
)


def _escape(raw: bytes) -> bytes:
    # backslash first: the escapes added after it must not be escaped again
    return raw.replace(b"\\", b"\\\\").replace(b"'", b"\\'").replace(b"\0", b"\\0").replace(b"\x1a", b"\\Z")


def _binary_literal(m: re.Match[bytes]) -> bytes:
    intro = (m.group(1) or b"_binary ").rstrip()
    return intro + b"'" + _escape(bytes.fromhex(m.group(2).decode("ascii"))) + b"'"


def compact(sql: bytes | str) -> bytes:
    """`sql` with its big hex literals as escaped binary literals (same values, about half the size)."""
    data = sql.encode("utf-8") if isinstance(sql, str) else sql
    return _BIG_HEX.sub(_binary_literal, data)
