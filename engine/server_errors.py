"""What a server error means to a DR-side session: the session is gone (reconnect), or the statement
failed (report it, with the server's own words)."""

from __future__ import annotations

import pymysql

# Server errors that mean the session is gone rather than that the statement is wrong. Not 1153
# (packet bigger than max_allowed_packet): the server drops the session, but the same statement
# would be refused again after every reconnect.
SESSION_GONE = {1053, 1077, 1152, 1159, 1160, 1161, 1927, 4031}


def connection_lost(exc: BaseException) -> bool:
    """Client-side errors (2xxx: lost, gone away) and server shutdown/kill: reconnect, don't fail."""
    if isinstance(exc, pymysql.err.InterfaceError):
        return True
    code = exc.args[0] if isinstance(exc, pymysql.err.MySQLError) and exc.args else None
    return isinstance(code, int) and (code >= 2000 or code in SESSION_GONE or code == 0)


def mysql_message(exc: pymysql.err.MySQLError) -> str:
    """`(code) message` of a server error, for a log line or a ReplicationError."""
    if len(exc.args) >= 2:
        return f"({exc.args[0]}) {exc.args[1]}"
    return str(exc)
