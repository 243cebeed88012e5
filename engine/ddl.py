"""What a replicated DDL statement is: its tokens, the databases it touches, the session it must run
under, and its definer. What to do with it (apply, skip, replay) is engine.ddl_apply's business.

Scope comes from the statement's tokens, not a regex over its text: strings and comments never name
a database (a COMMENT 'shop.t' is no reference to shop), backticks may hold dots, and `/*!...*/`
executable comments are code. Only names in object positions count (the statement's target, RENAME
and REFERENCES targets, LIKE sources, the tables a view reads); a column written `alias.col` does not.
sqlglot was considered: its MySQL dialect does not parse much MariaDB DDL (events, triggers,
SET STATEMENT, executable comments), and a wrong parse here would silently drop a DDL.

The session context (sql_mode, time zone, character sets, foreign/unique checks, auto-increment
settings) comes from the Query event's status variables, as a native replica uses them.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field

import pymysql.charset

from engine.connect import quote_ident

# -- session context -----------------------------------------------------------------------------

# sql_mode bits shared by MySQL and MariaDB (bit 4 is MariaDB's IGNORE_BAD_TABLE_OPTIONS, unused in
# MySQL). Bits 32+ differ between the two vendors and are left out. Combination modes (ANSI,
# TRADITIONAL, ...) are left out too: the binlog carries their parts as separate bits, and MySQL 8
# no longer accepts several of the names.
_SQL_MODE_BITS = {
    0: "REAL_AS_FLOAT", 1: "PIPES_AS_CONCAT", 2: "ANSI_QUOTES", 3: "IGNORE_SPACE", 5: "ONLY_FULL_GROUP_BY",
    6: "NO_UNSIGNED_SUBTRACTION", 7: "NO_DIR_IN_CREATE", 13: "NO_KEY_OPTIONS", 14: "NO_TABLE_OPTIONS",
    15: "NO_FIELD_OPTIONS", 19: "NO_AUTO_VALUE_ON_ZERO", 20: "NO_BACKSLASH_ESCAPES", 21: "STRICT_TRANS_TABLES",
    22: "STRICT_ALL_TABLES", 23: "NO_ZERO_IN_DATE", 24: "NO_ZERO_DATE", 25: "ALLOW_INVALID_DATES",
    26: "ERROR_FOR_DIVISION_BY_ZERO", 29: "HIGH_NOT_PRECEDENCE", 30: "NO_ENGINE_SUBSTITUTION",
    31: "PAD_CHAR_TO_FULL_LENGTH",
}  # fmt: skip
# Names only one vendor (or one parser) knows: tried first, dropped when the DR server rejects them.
# Combination modes (ANSI, TRADITIONAL) have bits of their own that SHOW CREATE prints: naming them
# sets only bits the source had too (their parts travel as bits of their own).
_SQL_MODE_LEGACY_BITS = {
    8: "POSTGRESQL", 9: "ORACLE", 10: "MSSQL", 11: "DB2", 12: "MAXDB", 16: "MYSQL323", 17: "MYSQL40",
    18: "ANSI", 27: "TRADITIONAL", 28: "NO_AUTO_CREATE_USER",
}  # fmt: skip
_SQL_MODE_VENDOR_BITS = {
    "mariadb": {**_SQL_MODE_LEGACY_BITS, 4: "IGNORE_BAD_TABLE_OPTIONS", 32: "EMPTY_STRING_IS_NULL",
                33: "SIMULTANEOUS_ASSIGNMENT", 34: "TIME_ROUND_FRACTIONAL"},
    "mysql": {**_SQL_MODE_LEGACY_BITS, 32: "TIME_TRUNCATE_FRACTIONAL"},
}  # fmt: skip
ANSI_QUOTES = 1 << 2
NO_BACKSLASH_ESCAPES = 1 << 20
# flags2 bits (OPTION_* of the server), as the Query event carries them
_AUTO_IS_NULL = 1 << 14
_NO_CHECK_CONSTRAINT_CHECKS = 1 << 15  # MariaDB
_EXPLICIT_DEF_TIMESTAMP = 1 << 24  # MariaDB (MySQL does not log explicit_defaults_for_timestamp here)
_NO_FOREIGN_KEY_CHECKS = 1 << 26
_RELAXED_UNIQUE_CHECKS = 1 << 27


def sql_mode_names(mode: int, *, portable: bool = False, vendor: str | None = None) -> str:
    """The names of sql_mode bits, as `SET sql_mode` takes them; `vendor` ("mariadb" | "mysql", the
    source's; None: MariaDB) decides the bits the two vendors number differently. `portable`: only
    the bits both vendors name alike."""
    bits = dict(_SQL_MODE_BITS) if portable else {**_SQL_MODE_BITS, **_SQL_MODE_VENDOR_BITS[vendor or "mariadb"]}
    return ",".join(name for bit, name in sorted(bits.items()) if mode & (1 << bit))


@dataclass(frozen=True)
class SessionContext:
    """What a Query event says about the session its statement ran in (None: not in the event)."""

    flags2: int | None = None
    sql_mode: int | None = None
    auto_increment: tuple[int, int] | None = None  # increment, offset
    charset: tuple[int, int, int] | None = None  # character_set_client, collation_connection, collation_server ids
    time_zone: str | None = None
    microseconds: int | None = None  # fraction of the statement's start time (MariaDB Q_HRNOW, MySQL Q_MICROSECONDS)
    vendor: str | None = None  # the source's: "mariadb" | "mysql" (None: not known)

    @property
    def ansi_quotes(self) -> bool:
        return bool(self.sql_mode and self.sql_mode & ANSI_QUOTES)

    @property
    def backslash_escapes(self) -> bool:
        return not (self.sql_mode and self.sql_mode & NO_BACKSLASH_ESCAPES)

    @property
    def foreign_key_checks(self) -> int | None:
        return None if self.flags2 is None else int(not self.flags2 & _NO_FOREIGN_KEY_CHECKS)

    @property
    def unique_checks(self) -> int | None:
        return None if self.flags2 is None else int(not self.flags2 & _RELAXED_UNIQUE_CHECKS)

    @property
    def sql_auto_is_null(self) -> int | None:
        return None if self.flags2 is None else int(bool(self.flags2 & _AUTO_IS_NULL))

    @property
    def mariadb_flags(self) -> dict[str, int]:
        """Session switches only MariaDB logs in flags2 (a MySQL source: none)."""
        if self.flags2 is None or self.vendor != "mariadb":
            return {}
        return {
            "explicit_defaults_for_timestamp": int(bool(self.flags2 & _EXPLICIT_DEF_TIMESTAMP)),
            "check_constraint_checks": int(not self.flags2 & _NO_CHECK_CONSTRAINT_CHECKS),
        }

    def sql_mode_text(self, *, portable: bool = False) -> str | None:
        return None if self.sql_mode is None else sql_mode_names(self.sql_mode, portable=portable, vendor=self.vendor)

    def encoding(self) -> str:
        """Python codec of the client character set the statement text was sent in."""
        if self.charset is None:
            return "utf-8"
        try:
            enc = pymysql.charset.charset_by_id(self.charset[0]).encoding
        except KeyError:
            return "utf-8"
        return "utf-8" if enc in ("utf8", "utf8mb4", "binary") else enc


_U16 = struct.Struct("<H").unpack_from
_U32 = struct.Struct("<I").unpack_from
_U64 = struct.Struct("<Q").unpack_from
# status variables of fixed size that we do not use: key -> size (MySQL and MariaDB)
_FIXED_SIZES = {7: 2, 8: 2, 9: 8, 10: 4, 13: 3, 16: 1, 17: 8, 18: 2, 19: 1, 20: 1, 128: 3, 129: 8, 130: 1}


def parse_status_vars(data: bytes, start: int, length: int, vendor: str | None = None) -> SessionContext:
    """The session context from a Query event's status variables (data[start:start+length]).

    Parsing stops at a key it does not know (its size is unknown): what was read so far is kept.
    """
    values: dict[str, object] = {"vendor": vendor}
    p, end = start, start + length
    try:
        while p < end:
            key = data[p]
            p += 1
            if key == 0:
                values["flags2"] = _U32(data, p)[0]
                p += 4
            elif key == 1:
                values["sql_mode"] = _U64(data, p)[0]
                p += 8
            elif key == 3:
                values["auto_increment"] = (_U16(data, p)[0], _U16(data, p + 2)[0])
                p += 4
            elif key == 4:
                values["charset"] = (_U16(data, p)[0], _U16(data, p + 2)[0], _U16(data, p + 4)[0])
                p += 6
            elif key == 5:
                n = data[p]
                values["time_zone"] = data[p + 1 : p + 1 + n].decode("ascii", "replace")
                p += 1 + n
            elif key in (13, 128):  # Q_MICROSECONDS (MySQL), Q_HRNOW (MariaDB): 3 bytes
                values["microseconds"] = int.from_bytes(data[p : p + 3], "little")
                p += 3
            elif key == 6:  # catalog
                p += 1 + data[p]
            elif key == 11:  # invoker user, host
                p += 1 + data[p]
                p += 1 + data[p]
            elif key == 12:  # updated db names
                count = data[p]
                p += 1
                if count != 254:
                    for _ in range(count):
                        p = data.index(b"\0", p) + 1
            elif key in _FIXED_SIZES:
                p += _FIXED_SIZES[key]
            else:
                break
    except (IndexError, ValueError, struct.error):
        pass  # a truncated block: keep what was read
    return SessionContext(**values)  # type: ignore[arg-type]


# -- tokenizer ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    kind: str  # "word" (bare identifier or keyword), "ident" (quoted identifier), "string", "punct"
    text: str  # for "ident": the unquoted name; for "string": the raw literal
    # where the token is in the statement (sql[start:end]), so a rewrite can splice the original text
    start: int = field(default=0, compare=False)
    end: int = field(default=0, compare=False)

    @property
    def upper(self) -> str:
        return self.text.upper() if self.kind == "word" else ""

    @property
    def is_name(self) -> bool:
        return self.kind in ("word", "ident")


_EXEC_COMMENT = re.compile(r"/\*M?!\d*")
_WORD = re.compile(r"[0-9A-Za-z_$\u0080-\uffff]+")


def tokenize(sql: str, *, ansi_quotes: bool = False, backslash_escapes: bool = True) -> list[Token]:
    """MySQL tokens of `sql`: comments dropped, executable comments (`/*!50100 ...*/`) kept as code."""
    out: list[Token] = []
    i, n, exec_depth = 0, len(sql), 0
    while i < n:
        c = sql[i]
        if c.isspace():
            i += 1
        elif c == "#" or (sql.startswith("--", i) and (i + 2 >= n or sql[i + 2].isspace())):
            j = sql.find("\n", i)
            i = n if j < 0 else j + 1
        elif sql.startswith("/*", i):
            m = _EXEC_COMMENT.match(sql, i)
            if m:
                exec_depth += 1
                i = m.end()
            else:
                j = sql.find("*/", i + 2)
                i = n if j < 0 else j + 2
        elif exec_depth and sql.startswith("*/", i):
            exec_depth -= 1
            i += 2
        elif c == "`" or (c == '"' and ansi_quotes):
            start = i
            text, i = _quoted(sql, i, escapes=False)
            out.append(Token("ident", text, start, i))
        elif c in "'\"":
            start = i
            _, i = _quoted(sql, i, escapes=backslash_escapes)
            out.append(Token("string", sql[start:i], start, i))
        else:
            m = _WORD.match(sql, i)
            if m:
                out.append(Token("word", m.group(), i, m.end()))
                i = m.end()
            else:
                out.append(Token("punct", c, i, i + 1))
                i += 1
    return out


def _quoted(sql: str, i: int, *, escapes: bool) -> tuple[str, int]:
    """(content, index after the closing quote) of the quoted token at sql[i]; a doubled quote is one."""
    q, j, parts = sql[i], i + 1, []
    while j < len(sql):
        c = sql[j]
        if escapes and c == "\\" and j + 1 < len(sql):
            parts.append(sql[j : j + 2])
            j += 2
        elif c == q:
            if sql.startswith(q, j + 1):
                parts.append(q)
                j += 2
            else:
                return "".join(parts), j + 1
        else:
            parts.append(c)
            j += 1
    return "".join(parts), j  # unterminated: the server would have refused it


# -- scope --------------------------------------------------------------------------------------

_OBJECT_KINDS = {"TABLE", "VIEW", "TRIGGER", "EVENT", "PROCEDURE", "FUNCTION", "INDEX", "DATABASE", "SCHEMA",
                 "SEQUENCE", "PACKAGE"}  # fmt: skip
_MODIFIERS = {"OR", "REPLACE", "TEMPORARY", "ONLINE", "OFFLINE", "IGNORE", "UNIQUE", "FULLTEXT", "SPATIAL",
              "AGGREGATE", "NOWAIT", "BODY"}  # fmt: skip
# words that end a name list or cannot be a name in a FROM clause
_CLAUSE_WORDS = {"WHERE", "GROUP", "ORDER", "HAVING", "LIMIT", "UNION", "JOIN", "INNER", "LEFT", "RIGHT",
                 "CROSS", "NATURAL", "STRAIGHT_JOIN", "ON", "USING", "WINDOW", "FOR", "LOCK", "INTO",
                 "EXCEPT", "INTERSECT", "WITH", "RESTRICT", "CASCADE", "WAIT", "NOWAIT", "PARTITION",
                 "FULL", "OUTER"}  # fmt: skip


@dataclass
class DdlScope:
    verb: str = ""  # CREATE, ALTER, DROP, RENAME, TRUNCATE ... (upper case; "" when unknown)
    kind: str = ""  # TABLE, VIEW, TRIGGER, EVENT, ... ("" when unknown)
    target: tuple[str, str] | None = None  # (database, object) the statement creates/changes/drops
    databases: set[str] = field(default_factory=set)  # every database the statement touches


class _Reader:
    def __init__(self, tokens: list[Token], default_db: str):
        self.t, self.p, self.default_db = tokens, 0, default_db

    def peek(self, k: int = 0) -> Token | None:
        return self.t[self.p + k] if self.p + k < len(self.t) else None

    def word(self, k: int = 0) -> str:
        tok = self.peek(k)
        return tok.upper if tok else ""

    def accept(self, *words: str) -> bool:
        if self.word() in words:
            self.p += 1
            return True
        return False

    def name(self) -> tuple[str, str] | None:
        """A name at the cursor, `db.obj` or `obj` (the default database), else None."""
        first = self.peek()
        if first is None or not first.is_name:
            return None
        dot, second = self.peek(1), self.peek(2)
        if dot is not None and dot.text == "." and dot.kind == "punct" and second is not None and second.is_name:
            self.p += 3
            return first.text, second.text
        self.p += 1
        return self.default_db, first.text

    def skip_definer(self) -> None:
        # DEFINER = user[@host] | CURRENT_USER[()] ; ALGORITHM = x ; SQL SECURITY x
        while True:
            if self.word() in ("DEFINER", "ALGORITHM") and self.peek(1) and self.peek(1).text == "=":  # type: ignore[union-attr]
                self.p += 3
                if self.peek() and self.peek().text in ("@", "("):  # type: ignore[union-attr]
                    self.p += 2  # @host, or the () of CURRENT_USER()
            elif self.word() == "SQL" and self.word(1) == "SECURITY":
                self.p += 3
            elif self.word() in _MODIFIERS:
                self.p += 1
            else:
                return

    def skip_set_statement(self) -> None:
        if self.word() == "SET" and self.word(1) == "STATEMENT":  # MariaDB: SET STATEMENT var=x FOR <statement>
            while self.peek() is not None and self.word() != "FOR":
                self.p += 1
            self.p += 1

    def at_punct(self, text: str, k: int = 0) -> bool:
        tok = self.peek(k)
        return tok is not None and tok.kind == "punct" and tok.text == text

    def skip_if_exists(self) -> None:
        if self.word() == "IF":
            self.p += 1
            self.accept("NOT")
            self.accept("EXISTS")


def body_of(statement: str, context: SessionContext | None = None) -> str:
    """The statement without a leading `SET STATEMENT var=value[, ...] FOR` (MariaDB)."""
    ctx = context or SessionContext()
    tokens = tokenize(statement, ansi_quotes=ctx.ansi_quotes, backslash_escapes=ctx.backslash_escapes)
    r = _Reader(tokens, "")
    r.skip_set_statement()
    tok = r.peek()
    return statement if r.p == 0 or tok is None else statement[tok.start :]


def analyze(statement: str, default_db: str, context: SessionContext | None = None) -> DdlScope:
    """The statement's verb, object kind, target and every database it touches (see module doc)."""
    ctx = context or SessionContext()
    tokens = tokenize(statement, ansi_quotes=ctx.ansi_quotes, backslash_escapes=ctx.backslash_escapes)
    r = _Reader(tokens, default_db)
    scope = DdlScope()
    r.skip_set_statement()
    scope.verb = r.word()
    r.p += 1
    r.skip_definer()
    if scope.verb == "TRUNCATE":
        r.accept("TABLE")
        scope.kind = "TABLE"
    else:
        scope.kind = r.word() if r.word() in _OBJECT_KINDS else ""
        if scope.kind:
            r.p += 1
    touched: list[tuple[str, str]] = []
    if scope.kind in ("DATABASE", "SCHEMA"):
        r.skip_if_exists()
        tok = r.peek()
        db = tok.text if tok is not None and tok.is_name and tok.upper not in ("CHARACTER", "DEFAULT", "COLLATE", "CHARSET", "COMMENT", "UPGRADE") else default_db
        scope.target = (db, "")
        scope.databases = {db}
        return scope
    if scope.kind == "INDEX":  # CREATE/DROP INDEX i ON t
        r.skip_if_exists()
        r.name()
        while r.peek() is not None and r.word() != "ON":
            r.p += 1
        r.p += 1
    elif scope.kind:
        r.skip_if_exists()
    first = r.name() if scope.kind or scope.verb == "TRUNCATE" else None
    if first is not None:
        scope.target = first
        touched.append(first)
    if scope.verb in ("DROP", "RENAME") and scope.kind in ("TABLE", "VIEW", "SEQUENCE"):
        # DROP TABLE a, b / RENAME TABLE a TO b, c TO d: every name in the list
        while r.peek() is not None:
            if r.accept("TO") or r.peek().text == ",":  # type: ignore[union-attr]
                if r.peek() is not None and r.peek().text == ",":  # type: ignore[union-attr]
                    r.p += 1
                found = r.name()
                if found is not None:
                    touched.append(found)
            else:
                r.p += 1
    elif scope.kind == "TRIGGER":  # CREATE TRIGGER t BEFORE INSERT ON tbl: the body does not count
        while r.peek() is not None and r.word() != "ON":
            r.p += 1
        r.p += 1
        found = r.name()
        if found is not None:
            touched.append(found)
    elif scope.kind in ("EVENT", "PROCEDURE", "FUNCTION", "PACKAGE"):
        # a routine's body is not run by its DDL; ALTER EVENT ... RENAME TO moves it
        while r.peek() is not None and r.word() not in ("DO", "BEGIN"):
            if r.word() == "RENAME" and r.word(1) == "TO":
                r.p += 2
                found = r.name()
                if found is not None:
                    touched.append(found)
            else:
                r.p += 1
    elif scope.kind in ("TABLE", "VIEW"):
        touched.extend(_references(r, view=scope.kind == "VIEW"))
    return _finish(scope, touched, default_db)


def _finish(scope: DdlScope, touched: list[tuple[str, str]], default_db: str) -> DdlScope:
    scope.databases = {db for db, _ in touched} if touched else {default_db}
    return scope


def _references(r: _Reader, *, view: bool) -> list[tuple[str, str]]:
    """Other objects a CREATE/ALTER TABLE or VIEW statement names: RENAME TO, REFERENCES, LIKE,
    WITH TABLE (partition exchange) and, in a view, the tables of its FROM/JOIN clauses."""
    found: list[tuple[str, str]] = []
    selects = [False]  # per parenthesis depth: a SELECT was seen (FROM means tables there)
    ctes: set[str] = set()
    while r.peek() is not None:
        tok = r.peek()
        assert tok is not None
        w = tok.upper
        if tok.kind == "punct" and tok.text == "(":
            selects.append(False)
            r.p += 1
        elif tok.kind == "punct" and tok.text == ")":
            if len(selects) > 1:
                selects.pop()
            r.p += 1
        elif w == "SELECT":
            selects[-1] = True
            r.p += 1
        elif w == "WITH" and view:  # common table expressions are no tables
            r.p += 1
            r.accept("RECURSIVE")
            cte = r.peek()
            if cte is not None and cte.is_name:
                ctes.add(cte.text.lower())
        elif tok.kind == "punct" and tok.text == "," and view and r.peek(1) is not None and r.peek(2) is not None \
                and r.peek(1).is_name and r.word(2) == "AS" and r.peek(3) is not None and r.peek(3).text == "(":  # type: ignore[union-attr]
            ctes.add(r.peek(1).text.lower())  # type: ignore[union-attr]
            r.p += 1
        elif w == "RENAME" and not view:
            r.p += 1
            if r.word() in ("COLUMN", "INDEX", "KEY", "CONSTRAINT", "PARTITION"):
                continue
            r.accept("TO", "AS")
            name = r.name()
            if name is not None:
                found.append(name)
        elif w in ("REFERENCES", "LIKE") and not view:
            r.p += 1
            name = r.name()
            if name is not None:
                found.append(name)
        elif w == "WITH" and r.word(1) == "TABLE" and not view:
            r.p += 2
            name = r.name()
            if name is not None:
                found.append(name)
        elif view and (w == "JOIN" or (w == "FROM" and selects[-1])):
            r.p += 1
            found.extend(_table_list(r, ctes, single=w == "JOIN"))
        else:
            r.p += 1
    return found


def _table_list(r: _Reader, ctes: set[str], *, single: bool) -> list[tuple[str, str]]:
    """Table names of a FROM clause (`a x, b AS y, c`); a subquery or DUAL names none."""
    found: list[tuple[str, str]] = []
    while True:
        tok = r.peek()
        if tok is None or not tok.is_name or tok.upper in ("DUAL", "LATERAL") or tok.upper in _CLAUSE_WORDS:
            return found
        name = r.name()
        assert name is not None
        qualified = r.t[r.p - 2].text == "." if r.p >= 2 else False
        if qualified or name[1].lower() not in ctes:
            found.append(name)
        r.accept("AS")
        alias = r.peek()
        if alias is not None and alias.is_name and alias.upper not in _CLAUSE_WORDS:
            r.p += 1
        nxt = r.peek()
        if single or nxt is None or nxt.text != ",":
            return found
        r.p += 1


# -- definer ------------------------------------------------------------------------------------
# One rule for the initial copy (SHOW CREATE output) and streaming (binlog DDL): only the DEFINER
# clause of the statement's own header counts. A routine body may hold `DEFINER=` text (a string, a
# comment, a CREATE VIEW it PREPAREs): that is data of the routine, never rewritten.

_CURRENT = {"CURRENT_USER", "CURRENT_ROLE"}  # MariaDB accepts a role as definer


def _name_text(tok: Token, ctx: SessionContext) -> str:
    """The name a word, quoted identifier or string literal spells."""
    if tok.kind == "string":
        return _quoted(tok.text, 0, escapes=ctx.backslash_escapes)[0]
    return tok.text


def _header_definer(statement: str, context: SessionContext | None) -> tuple[int, int, str] | None:
    """(start, end, account) of the DEFINER clause in the header `CREATE|ALTER [OR REPLACE]
    [ALGORITHM = x] DEFINER = account [SQL SECURITY x] VIEW|PROCEDURE|...`, or None without one.

    statement[start:end] is the whole clause (`DEFINER = user@host`); account is `user@host` (a role:
    `user`), '' for CURRENT_USER / CURRENT_ROLE.
    """
    ctx = context or SessionContext()
    r = _Reader(tokenize(statement, ansi_quotes=ctx.ansi_quotes, backslash_escapes=ctx.backslash_escapes), "")
    r.skip_set_statement()
    if not r.accept("CREATE", "ALTER"):
        return None
    while True:
        if r.word() == "OR" and r.word(1) == "REPLACE":
            r.p += 2
        elif (r.word() == "ALGORITHM" and r.at_punct("=", 1)) or (r.word() == "SQL" and r.word(1) == "SECURITY"):
            r.p += 3
        elif r.word() == "DEFINER" and r.at_punct("=", 1):
            break
        else:
            return None  # the object keyword (or anything else) came first: no definer clause
    start = r.peek().start  # type: ignore[union-attr]
    r.p += 2
    user = r.peek()
    if user is None or user.kind == "punct":
        return None
    r.p += 1
    if user.upper in _CURRENT:
        end = r.peek(1).end if r.at_punct("(") and r.at_punct(")", 1) else user.end  # type: ignore[union-attr]
        return start, end, ""
    name = _name_text(user, ctx)
    if not r.at_punct("@"):
        return start, user.end, name  # a role has no host
    r.p += 1
    host = r.peek()
    if host is None or host.kind == "punct":
        return start, user.end, name
    if host.kind != "word":
        return start, host.end, f"{name}@{_name_text(host, ctx)}"
    # an unquoted host (localhost, 10.0.0.1, db.example.com) is several tokens with no space between
    parts, end = [host.text], host.end
    r.p += 1
    while (nxt := r.peek()) is not None and nxt.start == end and (nxt.kind == "word" or nxt.text == "."):
        parts.append(nxt.text)
        end = nxt.end
        r.p += 1
    return start, end, f"{name}@{''.join(parts)}"


def definer_of(statement: str, context: SessionContext | None = None) -> str:
    """The definer account of a CREATE/ALTER statement's header as 'user@host' ('' when it names
    none, or CURRENT_USER)."""
    found = _header_definer(statement, context)
    return found[2] if found else ""


def definer_clause(account: str) -> str:
    """`user`@`host` for an account written as user@host (the host is after the last @)."""
    if "@" not in account:
        return quote_ident(account)  # a role (MariaDB) has no host
    user, host = account.rsplit("@", 1)
    return f"{quote_ident(user)}@{quote_ident(host)}"


def rewrite_definer(statement: str, account: str, context: SessionContext | None = None) -> str:
    """The statement with its header's DEFINER set to `account` (user@host); unchanged when the header
    has no DEFINER clause. `context` tells how the text was written (ANSI_QUOTES, backslash escapes)."""
    found = _header_definer(statement, context)
    if found is None:
        return statement
    start, end, _ = found
    return statement[:start] + "DEFINER=" + definer_clause(account) + statement[end:]
