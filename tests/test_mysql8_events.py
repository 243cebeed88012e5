"""MySQL 8 paths, without a MySQL server: constructed event bytes, the library's decoder as oracle.

- binary JSON (MySQL's JSON column): documents built here in the format of sql-common/json_binary.h
  go through rowdecode; the SQL we produce is evaluated back (by a model of the server's rules,
  below) and must rebuild the same JSON value, types included;
- events the library would filter away in silence (TRANSACTION_PAYLOAD, PARTIAL_UPDATE_ROWS, MariaDB's
  compressed events, incidents) fail the stream with the setting to change;
- table maps without FULL metadata are refused instead of decoded by guessing;
- the pre-checks of those settings, and the FLOAT-as-DOUBLE expression of servers without
  CAST(... AS DOUBLE).
"""

from __future__ import annotations

import json
import math
import re
import struct
import threading
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pymysqlreplication import BinLogStreamReader
from pymysqlreplication.constants import FIELD_TYPE
from pymysqlreplication.json_binary import parse_json
from test_decoders import (
    TABLE_MAP_EVENT,
    UTF8MB4,
    Col,
    blob_col,
    drain,
    encode_decimal,
    enum_col,
    event_packet,
    fake_stream,
    int_col,
    lenenc,
    library_rows,
    our_rows,
    rows_body,
    set_col,
    table_map_body,
    varchar_col,
)

from engine import rowdecode
from engine.connect import BinlogPosition, ServerInfo
from engine.errors import ReplicationError
from engine.precheck import (
    FAILED,
    PASSED,
    CheckContext,
    Side,
    check_binlog_format,
    check_binlog_row_image,
    check_binlog_row_metadata,
)
from engine.spec import Endpoint, Secret
from engine.sqlexpr import float_as_double_sql, supports_cast_double
from engine.stream import BinlogReader, FastRows, parse_fast, refusal

# ---- MySQL binary JSON, built as the server serializes it -------------------------------------------


@dataclass(frozen=True)
class U:
    """A JSON unsigned integer (from an UNSIGNED column or CAST(... AS UNSIGNED))."""

    v: int


@dataclass(frozen=True)
class Opaque:
    """A JSON value of another MySQL type: DECIMAL, DATE/TIME/DATETIME, or bytes."""

    ftype: int
    data: bytes


def jdecimal(text: str, precision: int, scale: int) -> Opaque:
    return Opaque(246, bytes([precision, scale]) + encode_decimal(text, precision, scale))


def jtemporal(ftype: int, y: int = 0, mo: int = 0, d: int = 0, h: int = 0, mi: int = 0, s: int = 0,
              micro: int = 0, negative: bool = False) -> Opaque:  # fmt: skip
    """TIME_to_longlong_*_packed() of my_time.cc, stored little-endian."""
    if ftype == 11:
        packed = ((h << 12 | mi << 6 | s) << 24) + micro
    else:
        packed = ((((y * 13 + mo) << 5 | d) << 17 | (h << 12 | mi << 6 | s)) << 24) + micro
    return Opaque(ftype, (-packed if negative else packed).to_bytes(8, "little", signed=True))


def _varlen(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def jscalar(v: Any) -> tuple[int, bytes]:
    if v is None:
        return 4, b"\x00"
    if v is True:
        return 4, b"\x01"
    if v is False:
        return 4, b"\x02"
    if isinstance(v, U):
        n = v.v
        return (6, n.to_bytes(2, "little")) if n <= 0xFFFF else (8, n.to_bytes(4, "little")) if n <= 0xFFFFFFFF else (10, n.to_bytes(8, "little"))
    if isinstance(v, int):
        if -(1 << 15) <= v < 1 << 15:
            return 5, v.to_bytes(2, "little", signed=True)
        if -(1 << 31) <= v < 1 << 31:
            return 7, v.to_bytes(4, "little", signed=True)
        return 9, v.to_bytes(8, "little", signed=True)
    if isinstance(v, float):
        return 11, struct.pack("<d", v)
    if isinstance(v, str):
        raw = v.encode("utf-8", "surrogatepass")
        return 12, _varlen(len(raw)) + raw
    if isinstance(v, Opaque):
        return 15, bytes([v.ftype]) + _varlen(len(v.data)) + v.data
    raise TypeError(v)


def jvalue(v: Any, large: bool = False) -> tuple[int, bytes]:
    """(type, bytes) of a value: serialize_json_value() of json_binary.cc."""
    if isinstance(v, dict | list):
        return jcontainer(v, large)
    return jscalar(v)


def jcontainer(v: dict | list, large: bool) -> tuple[int, bytes]:
    osize = 4 if large else 2
    is_object = isinstance(v, dict)
    if is_object:
        # Json_object keeps its members sorted: shorter keys first, then bytewise
        items = sorted(((k.encode(), val) for k, val in v.items()), key=lambda kv: (len(kv[0]), kv[0]))
    else:
        items = [(b"", val) for val in v]
    count = len(items)
    header = 2 * osize + count * ((osize + 2) if is_object else 0) + count * (1 + osize)
    key_entries, keys = b"", b""
    offset = header
    if is_object:
        for k, _ in items:
            key_entries += offset.to_bytes(osize, "little") + len(k).to_bytes(2, "little")
            keys += k
            offset += len(k)
    value_entries, values = b"", b""
    for _, val in items:
        t, data = jvalue(val, large)
        if t in (4, 5, 6) or (large and t in (7, 8)):
            value_entries += bytes([t]) + data.ljust(osize, b"\x00")
        else:
            value_entries += bytes([t]) + offset.to_bytes(osize, "little")
            values += data
            offset += len(data)
    size = offset
    if not large and size > 0xFFFF:
        return jcontainer(v, True)
    body = count.to_bytes(osize, "little") + size.to_bytes(osize, "little") + key_entries + value_entries + keys + values
    return (0 if is_object else 2) + (1 if large else 0), body


def jdoc(v: Any, large: bool = False) -> bytes:
    t, data = jvalue(v, large)
    return bytes([t]) + data


# ---- what the DR server makes of our SQL -------------------------------------------------------------
# A model of the MySQL rules our output relies on (each from the server source or manual):
# - JSON text is parsed by rapidjson (json_dom.cc, kParseDefaultFlags): an integer that fits in 32
#   unsigned bits, or any negative one, becomes a signed JSON integer, a larger one an unsigned
#   integer; a number with '.' or an exponent becomes a double, exact only when rapidjson's
#   normal-precision path is (significand < 2**53 and a power of ten within 22: one exact division);
# - in JSON_OBJECT/JSON_ARRAY, and in CAST(x AS JSON) of a non-string x, an argument keeps its SQL
#   type: an integer literal a signed integer, CAST(... AS UNSIGNED) an unsigned one, a literal with
#   an exponent a double (read exactly by the SQL lexer), DECIMAL/DATE/TIME/DATETIME their own type,
#   a utf8mb4 string a JSON string, a binary string an opaque value.


class Exact:
    """A model node: a JSON value with its type, compared exactly (doubles by their bits)."""

    def __init__(self, kind: str, value: Any):
        self.kind, self.value = kind, value

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Exact) or self.kind != other.kind:
            return False
        if self.kind == "double":
            return struct.pack("<d", self.value) == struct.pack("<d", other.value)
        return self.value == other.value

    def __repr__(self) -> str:
        return f"{self.kind}:{self.value!r}"

    __hash__ = None  # type: ignore[assignment]


def expected(v: Any) -> Any:
    """The model value of a document built from `v`."""
    if isinstance(v, dict):
        return {k: expected(x) for k, x in v.items()}
    if isinstance(v, list):
        return [expected(x) for x in v]
    if v is None or isinstance(v, bool):
        return v
    if isinstance(v, U):
        return Exact("uint", v.v)
    if isinstance(v, int):
        return Exact("int", v)
    if isinstance(v, float):
        return Exact("double", v)
    if isinstance(v, str):
        return Exact("string", v.encode("utf-8", "surrogatepass"))
    if v.ftype == 246:
        p, s = v.data[0], v.data[1]
        return Exact("decimal", (p, s, rowdecode._decimal_decoder(p, s)(v.data, 2)[0]))
    if v.ftype in (10, 11, 12, 7):
        return Exact({10: "date", 11: "time", 12: "datetime", 7: "datetime"}[v.ftype], rowdecode._packed_time(v.data, v.ftype))
    return Exact("opaque", v.data)


_TOKEN = re.compile(r"\s*(?:(_utf8mb4|_binary)\s+X'([0-9a-f]*)'|X'([0-9a-f]*)'|'((?:[^']|'')*)'|(-?[0-9][0-9.e+-]*)|([A-Z_]+)|([(),]))")


def _tokens(sql: str) -> list[tuple]:
    out, pos = [], 0
    while pos < len(sql):
        m = _TOKEN.match(sql, pos)
        assert m and m.end() > pos, f"cannot read {sql[pos:pos + 40]!r}"
        out.append(m.groups())
        pos = m.end()
    return out


def _json_text_model(text: str) -> Any:
    def number(s: str) -> Exact:
        if re.fullmatch(r"-?\d+", s):
            n = int(s)
            return Exact("uint", n) if n > 0xFFFFFFFF else Exact("int", n)
        mantissa, _, exp = s.lower().partition("e")
        whole, _, frac = mantissa.lstrip("-").partition(".")
        digits = int((whole + frac) or "0")
        power = int(exp or 0) - len(frac)
        assert digits < 1 << 53 and -22 <= power <= 22, f"{s} is not read exactly by rapidjson's normal precision"
        return Exact("double", float(s))

    def convert(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: convert(x) for k, x in v.items()}
        if isinstance(v, list):
            return [convert(x) for x in v]
        if isinstance(v, str):
            return Exact("string", v.encode("utf-8", "surrogatepass"))
        return v

    return convert(json.loads(text, parse_int=number, parse_float=number, object_pairs_hook=dict))


def evaluate(sql: str) -> Any:
    """The JSON value MySQL builds from one of our JSON expressions (see the rules above)."""
    tokens = _tokens(sql)
    pos = 0

    def take() -> tuple:
        nonlocal pos
        pos += 1
        return tokens[pos - 1]

    def expect(punct: str) -> None:
        assert take()[6] == punct

    def args() -> list:
        expect("(")
        items = []
        if tokens[pos][6] == ")":
            take()
            return items
        while True:
            items.append(expr())
            sep = take()[6]
            if sep == ")":
                return items
            assert sep == ","

    def expr() -> Any:
        intro, hex_intro, hex_plain, string, number, word, punct = take()
        if intro == "_utf8mb4":
            return ("sql-string", bytes.fromhex(hex_intro))
        if intro == "_binary" or hex_plain is not None:
            return Exact("opaque", bytes.fromhex(hex_intro if intro else hex_plain))
        if string is not None:
            return ("sql-string", string.replace("''", "'").encode())
        if number is not None:
            return Exact("double", float(number)) if "e" in number else Exact("int", int(number))
        if word == "JSON_OBJECT":
            a = args()
            assert len(a) % 2 == 0
            return {k[1].decode(): as_json(v) for k, v in zip(a[::2], a[1::2], strict=True)}
        if word == "JSON_ARRAY":
            return [as_json(v) for v in args()]
        if word == "CAST":
            expect("(")
            inner = expr()
            assert take()[5] == "AS"
            target = take()[5]
            if target in ("DECIMAL", "TIME", "DATETIME"):
                expect("(")
                params = [take()[4]]
                while take()[6] == ",":
                    params.append(take()[4])
            expect(")")
            if target == "JSON":
                if isinstance(inner, tuple):  # a string is parsed as JSON text
                    return _json_text_model(inner[1].decode("utf-8", "surrogateescape"))
                return as_json(inner)
            if target == "UNSIGNED":
                assert inner.kind == "int" and inner.value >= 0
                return Exact("uint", inner.value)
            text = inner[1].decode()
            if target == "DECIMAL":
                return Exact("decimal", (int(params[0]), int(params[1]), text))
            return Exact(target.lower(), text)
        raise AssertionError(f"unexpected token {word or punct}")

    def as_json(v: Any) -> Any:
        if isinstance(v, tuple):  # a utf8mb4 string argument: a JSON string
            return Exact("string", v[1])
        return v

    value = expr()
    assert pos == len(tokens)
    assert not isinstance(value, tuple), "a JSON column value must not be a bare string"
    return value


# ---- JSON tests ----------------------------------------------------------------------------------------

_opaques = st.one_of(
    st.integers(-(10**12) + 1, 10**12 - 1).map(lambda n: jdecimal(f"{'-' if n < 0 else ''}{abs(n) // 100}.{abs(n) % 100:02d}", 12, 2)),
    st.tuples(st.integers(1, 9999), st.integers(1, 12), st.integers(1, 28), st.integers(0, 23), st.integers(0, 59),
              st.integers(0, 59), st.integers(0, 999999)).map(lambda t: jtemporal(12, *t)),
    st.tuples(st.integers(1, 9999), st.integers(1, 12), st.integers(1, 28)).map(lambda t: jtemporal(10, *t)),
    st.tuples(st.integers(0, 838), st.integers(0, 59), st.integers(0, 59), st.integers(0, 999999), st.booleans()).map(
        lambda t: jtemporal(11, h=t[0], mi=t[1], s=t[2], micro=t[3], negative=t[4])),
    st.binary(max_size=10).map(lambda b: Opaque(252, b)),
)  # fmt: skip
_scalars = st.one_of(
    st.none(), st.booleans(),
    st.integers(-(1 << 63), (1 << 63) - 1), st.sampled_from([0xFFFFFFFF, 0x100000000, -(1 << 63), (1 << 63) - 1]),
    st.integers(0, (1 << 64) - 1).map(U), st.sampled_from([U(0), U(5), U(0xFFFFFFFF), U(0x100000000), U((1 << 64) - 1)]),
    st.floats(allow_nan=False, allow_infinity=False), st.sampled_from([0.1, 0.30000000000000004, 1e22, 1e23, -0.0, 5e-324, 1.0]),
    st.text(), st.sampled_from(['"', "\\", "\x00\n\t\x1f", "é€😀", "\u2028"]),
    _opaques,
)  # fmt: skip
json_values = st.recursive(
    _scalars, lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)), max_leaves=12
)


def _library_view(v: Any) -> Any:
    """Our document, as python-mysql-replication's parse_json returns it (keys and strings as bytes)."""
    if isinstance(v, dict):
        return {k.encode(): _library_view(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_library_view(x) for x in v]
    if isinstance(v, U):
        return v.v
    if isinstance(v, str):
        return v.encode()
    if isinstance(v, Opaque):
        return _LIBRARY_OPAQUE
    return v


_LIBRARY_OPAQUE = object()


def _same_as_library(ours: Any, theirs: Any) -> bool:
    if ours is _LIBRARY_OPAQUE:
        return True  # the library's reading of opaque values is checked by hand below
    if isinstance(ours, dict):
        return isinstance(theirs, dict) and list(ours) == list(theirs) and all(_same_as_library(ours[k], theirs[k]) for k in ours)
    if isinstance(ours, list):
        return isinstance(theirs, list) and len(ours) == len(theirs) and all(map(_same_as_library, ours, theirs))
    if isinstance(ours, float):
        return struct.pack("<d", ours) == struct.pack("<d", theirs)
    return type(ours) is type(theirs) and ours == theirs


def _has_long_time(v: Any) -> bool:
    if isinstance(v, dict):
        return any(map(_has_long_time, v.values()))
    if isinstance(v, list):
        return any(map(_has_long_time, v))
    return isinstance(v, Opaque) and v.ftype == 11 and abs(int.from_bytes(v.data, "little", signed=True)) >> 36 >= 24


def _sort_keys(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _sort_keys(x) for k, x in sorted(v.items(), key=lambda kv: (len(kv[0].encode()), kv[0].encode()))}
    if isinstance(v, list):
        return [_sort_keys(x) for x in v]
    return v


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values, st.booleans())
def test_binary_json_rebuilds_the_same_value(value: Any, large: bool) -> None:
    doc = jdoc(value, large)
    # the library (oracle for the structure) reads our constructed document as we meant it, unless it
    # holds a TIME of 24 hours or more (the library makes a datetime.time of it, and raises)
    if not _has_long_time(value):
        assert _same_as_library(_library_view(_sort_keys(value)), parse_json(doc[0], doc[1:]))
    sql = rowdecode.json_literal(doc)
    assert evaluate(sql) == expected(value)


def test_json_keys_come_back_as_bytes_in_the_library_and_text_here() -> None:
    doc = jdoc({"name": "é", "n": [1, 2.5, None, True]})
    with pytest.raises(TypeError, match="keys must be"):
        json.dumps(parse_json(doc[0], doc[1:]))  # what the old decoder did, and crashed on
    sql = rowdecode.json_literal(doc)
    text = bytes.fromhex(re.fullmatch(r"CAST\(_utf8mb4 X'([0-9a-f]*)' AS JSON\)", sql).group(1)).decode()
    assert text == '{"n": [1, 2.5, null, true], "name": "é"}'


@pytest.mark.parametrize(
    ("value", "sql"),
    [
        (None, "CAST(_utf8mb4 X'6e756c6c' AS JSON)"),
        (U(5), "CAST(CAST(5 AS UNSIGNED) AS JSON)"),  # as text, 5 would come back signed
        (5000000000, "CAST(5000000000 AS JSON)"),  # as text, a signed 5e9 would come back unsigned
        (0.30000000000000004, "CAST(0.30000000000000004e0 AS JSON)"),  # 17 digits: rapidjson may round
        ([1.5, 1e22], "CAST(_utf8mb4 X'" + b"[1.5, 1e+22]".hex() + "' AS JSON)"),
        ({"d": jdecimal("-1.50", 5, 2)}, "JSON_OBJECT(_utf8mb4 X'64',CAST('-1.50' AS DECIMAL(5,2)))"),
        ([jtemporal(12, 2024, 2, 29, 23, 59, 58, 500)], "JSON_ARRAY(CAST('2024-02-29 23:59:58.000500' AS DATETIME(6)))"),
        ([jtemporal(11, h=838, mi=59, s=59, negative=True)], "JSON_ARRAY(CAST('-838:59:59.000000' AS TIME(6)))"),
        ({"a": [1, U(2)], "b": "x"}, "JSON_OBJECT(_utf8mb4 X'61',JSON_ARRAY(CAST(_utf8mb4 X'31' AS JSON),CAST(2 AS UNSIGNED)),_utf8mb4 X'62',_utf8mb4 X'78')"),
        ([Opaque(252, b"\x00\xff")], "JSON_ARRAY(_binary X'00ff')"),
    ],
)  # fmt: skip
def test_json_sql_examples(value: Any, sql: str) -> None:
    assert rowdecode.json_literal(jdoc(value)) == sql


def test_library_reads_opaque_json_values_like_us() -> None:
    """The library's parse_opaque as oracle for DECIMAL/DATETIME/TIME inside JSON; it drops a TIME's
    sign and raises on 24 hours or more (a datetime.time), which we read."""
    doc = jdoc([jdecimal("-12.34", 6, 2), jtemporal(12, 2001, 2, 3, 4, 5, 6, 7), jtemporal(11, h=20, mi=1, s=2, micro=3, negative=True)])
    lib = parse_json(doc[0], doc[1:])
    assert lib[0] == Decimal("-12.34")
    assert str(lib[1]) == "2001-02-03 04:05:06.000007"
    assert str(lib[2]) == "20:01:02.000003"  # the sign is lost
    assert evaluate(rowdecode.json_literal(doc)) == [
        Exact("decimal", (6, 2, "-12.34")), Exact("datetime", "2001-02-03 04:05:06.000007"), Exact("time", "-20:01:02.000003")
    ]  # fmt: skip
    long_time = jdoc([jtemporal(11, h=838, mi=59, s=59)])
    with pytest.raises(ValueError, match="hour must be in"):
        parse_json(long_time[0], long_time[1:])
    assert evaluate(rowdecode.json_literal(long_time)) == [Exact("time", "838:59:59.000000")]


@pytest.mark.parametrize("doc", [b"\x00\x05\x00", b"\x0c\x80", b"\x0e", b"\x02\x01\x00\x03\x00"])
def test_invalid_binary_json_fails_with_the_bytes(doc: bytes) -> None:
    with pytest.raises(ReplicationError, match="not valid MySQL binary JSON.*" + doc[:8].hex()):
        rowdecode.json_literal(doc)


def test_empty_json_value_is_the_null_literal() -> None:
    assert rowdecode.json_literal(b"") == "CAST('null' AS JSON)"


def json_col(name: str) -> Col:
    return Col(name, FIELD_TYPE.JSON, b"\x04", encode=lambda v: len(v).to_bytes(4, "little") + v, values=st.none())


def test_json_column_through_the_stream() -> None:
    """A MySQL rows event with a JSON column, decoded by our fast path (the library: no crash either)."""
    cols = [int_col("id", 4, False, primary=True), json_col("j"), int_col("u", 8, True)]
    value = {"k": [U(1), -2, 0.1, "s", None], "é": {"x": jdecimal("0.5", 2, 1)}}
    packets = [
        event_packet(TABLE_MAP_EVENT, table_map_body(5, "shop", "docs", cols), log_pos=10),
        event_packet(30, rows_body("insert", 5, cols, [(1, jdoc(value), (1 << 64) - 1)]), log_pos=20),
    ]
    [(kind, schema, table, [row])] = our_rows(packets)
    assert (kind, schema, table) == ("insert", "shop", "docs")
    assert row[0] == "1" and row[2] == "18446744073709551615"
    assert evaluate(row[1]) == expected(value)


# ---- events that must never be skipped ------------------------------------------------------------------


def _run_reader(packets: list[bytes], dbms: str = "mysql", full_metadata: bool = True) -> list:
    """BinlogReader over a fake stream of `packets`: the transactions it yields until they end."""
    stop = threading.Event()
    reader = BinlogReader(Endpoint("127.0.0.1", 3306, "u", Secret("p")), _position(), server_id=7, databases=None, stop=stop)
    stream = fake_stream(packets, dbms=dbms, full_metadata=full_metadata, on_end=stop.set)
    reader._open = lambda: stream  # type: ignore[method-assign]
    return [t for t in reader if type(t).__name__ != "Heartbeat"]


def _position() -> BinlogPosition:
    return BinlogPosition("binlog.000001", 4)


MARIADB_ANNOTATE, PREVIOUS_GTIDS, MYSQL_GTID = 160, 35, 33


@pytest.mark.parametrize(
    ("etype", "setting"),
    [
        (40, "binlog_transaction_compression=OFF"),
        (39, "binlog_row_value_options=''"),
        (166, "log_bin_compress=OFF"),
        (169, "log_bin_compress=OFF"),
        (26, "new initial copy"),
        (18, "binlog_format='ROW'"),
    ],
)
@pytest.mark.parametrize("after", [None, MARIADB_ANNOTATE, PREVIOUS_GTIDS], ids=["alone", "after-annotate", "after-previous-gtids"])
def test_unreadable_events_fail_the_stream_with_the_setting(etype: int, setting: str, after: int | None) -> None:
    """Never filtered away: alone, or right after an event the library parses and filters itself
    (it used to read the next packet on its own, where no check ran)."""
    packets = [event_packet(after, b"\x00" * 8, log_pos=50)] if after else []
    packets.append(event_packet(etype, b"\x01" * 40, log_pos=1234))
    stream = fake_stream(packets)
    with pytest.raises(ReplicationError) as exc:
        stream.fetchone()
    assert setting in str(exc.value) and f"event type {etype} ending at binlog.000001:1234" in str(exc.value)


def test_refusal_covers_exactly_the_change_carrying_events() -> None:
    refused = {t for t in range(256) if refusal(t)}
    assert refused == {6, 8, 9, 10, 11, 12, 17, 18, 26, 39, 40, 166, 167, 168, 169, 170, 171}


def test_filtered_events_are_skipped_and_the_next_one_read_by_us() -> None:
    """An event the library filters (annotate rows, previous GTIDs) hands the next packet back to
    our fast path: a rows event after it comes out as FastRows."""
    cols = [int_col("id", 4, False, primary=True)]
    packets = [
        event_packet(TABLE_MAP_EVENT, table_map_body(9, "db", "t", cols), log_pos=10),
        event_packet(PREVIOUS_GTIDS, b"\x00" * 8, log_pos=20),
        event_packet(30, rows_body("insert", 9, cols, [(7,)]), log_pos=30),
    ]
    stream = fake_stream(packets)
    events = drain(stream)
    assert [type(e).__name__ for e in events] == ["TableMapEvent", "FastRows"]
    assert isinstance(events[1], FastRows) and stream.log_pos == 30


# ---- table maps without FULL metadata -------------------------------------------------------------------


def _unsigned_table() -> list[Col]:
    return [int_col("id", 4, False, primary=True), int_col("qty", 8, True), varchar_col("name", 40, UTF8MB4),
            blob_col("note", 2, UTF8MB4)]  # fmt: skip


def _insert_packets(metadata: str) -> list[bytes]:
    cols = _unsigned_table()
    return [
        event_packet(MYSQL_GTID, b"\x00" + b"\x11" * 16 + (5).to_bytes(8, "little") + b"\x00" * 17, log_pos=100),
        event_packet(TABLE_MAP_EVENT, table_map_body(11, "shop", "stock", cols, metadata=metadata), log_pos=200),
        event_packet(30, rows_body("insert", 11, cols, [(1, (1 << 64) - 1, "é".encode(), b"x")]), log_pos=300),
        event_packet(16, (42).to_bytes(8, "little"), log_pos=400),
    ]


def test_full_metadata_decodes_unsigned_and_charsets() -> None:
    [txn] = _run_reader(_insert_packets("FULL"))
    [change] = txn.changes
    assert (change.schema, change.table, change.rows) == ("shop", "stock", [("1", "18446744073709551615", "_utf8mb4 X'c3a9'", "_utf8mb4 X'78'")])


@pytest.mark.parametrize(("metadata", "full_at_connect"), [("MINIMAL", False), ("NONE", False), ("MINIMAL", True), ("NONE", True)])
def test_table_map_without_full_metadata_is_refused(metadata: str, full_at_connect: bool) -> None:
    """MINIMAL (MySQL 8's default) or none (MySQL 5.7, MariaDB < 10.5): refused, never guessed."""
    with pytest.raises(ReplicationError) as exc:
        _run_reader(_insert_packets(metadata), full_metadata=full_at_connect)
    message = str(exc.value)
    assert "`shop`.`stock`" in message and "binlog_row_metadata='FULL'" in message and "new initial copy" in message


def test_refused_table_of_another_database_does_not_stop_the_task() -> None:
    """Tables the task does not protect are never decoded, so their maps may lack metadata."""
    cols = _unsigned_table()
    packets = [
        event_packet(TABLE_MAP_EVENT, table_map_body(12, "other", "t", cols, metadata="NONE"), log_pos=200),
        event_packet(30, rows_body("insert", 12, cols, [(1, 5, b"a", b"b")]), log_pos=300),
        event_packet(16, (43).to_bytes(8, "little"), log_pos=400),
        *_insert_packets("FULL")[1:],
    ]
    stop = threading.Event()
    reader = BinlogReader(Endpoint("h", 1, "u", Secret("p")), _position(), server_id=7, databases=("shop",), stop=stop)
    stream = fake_stream(packets, on_end=stop.set)
    reader._open = lambda: stream  # type: ignore[method-assign]
    txns = [t for t in reader if type(t).__name__ == "Transaction"]
    assert [c.table for t in txns for c in t.changes] == ["stock"]


def test_metadata_gaps_are_named() -> None:
    cols = _unsigned_table()
    packets = [event_packet(TABLE_MAP_EVENT, table_map_body(13, "db", "t", cols, metadata="MINIMAL"), log_pos=1)]
    stream = fake_stream(packets)
    event = stream.fetchone()
    assert rowdecode.metadata_gaps(event) == ["column names"]
    with pytest.raises(ReplicationError, match="without column names"):
        rowdecode.table_decoders(stream.table_map[13])


def test_enum_and_set_need_their_metadata() -> None:
    cols = [int_col("id", 4, False, primary=True), enum_col("e", [b"a", b"b"]), set_col("s", [b"x"], 1)]
    body = table_map_body(14, "db", "t", cols)
    # the same map with its ENUM_STR_VALUE field (type 6) dropped
    tlv_at = body.index(bytes([6]) + lenenc(len(lenenc(2) + b"\x01a\x01b")))
    broken = body[:tlv_at] + body[tlv_at + 2 + len(lenenc(2) + b"\x01a\x01b") :]
    for map_body, refused in ((body, False), (broken, True)):
        stream = fake_stream([event_packet(TABLE_MAP_EVENT, map_body, log_pos=1)])
        event = stream.fetchone()
        assert bool(rowdecode.metadata_gaps(event)) is refused


# ---- pre-checks -----------------------------------------------------------------------------------------


def _ctx(**source_vars: str | None) -> CheckContext:
    info = ServerInfo("8.0.36", "mysql", (8, 0), 1, "h", 3306, None)
    side = Side("service database", Endpoint("h", 3306, "u", Secret("p")), info=info, vars={k.lower(): v for k, v in source_vars.items()})
    return CheckContext(None, side, Side("DR database", Endpoint("h", 3307, "u", Secret("p"))))  # type: ignore[arg-type]


def test_precheck_fails_compressed_binlogs() -> None:
    result, reason, fix = check_binlog_format(_ctx(binlog_format="ROW", binlog_transaction_compression="ON"))
    assert result == FAILED and "binlog_transaction_compression is ON" in reason
    assert "SET GLOBAL binlog_transaction_compression=OFF;" in fix
    result, reason, fix = check_binlog_format(_ctx(binlog_format="ROW", log_bin_compress="ON"))
    assert result == FAILED and "log_bin_compress is ON" in reason and "log_bin_compress=OFF" in fix
    assert check_binlog_format(_ctx(binlog_format="ROW", binlog_transaction_compression="OFF"))[0] == PASSED
    assert check_binlog_format(_ctx(binlog_format="ROW"))[0] == PASSED  # MySQL before 8.0.20: no such variable


def test_precheck_fails_partial_json() -> None:
    result, reason, fix = check_binlog_row_image(_ctx(binlog_row_image="FULL", binlog_row_value_options="PARTIAL_JSON"))
    assert result == FAILED and "binlog_row_value_options is PARTIAL_JSON" in reason
    assert fix.startswith("SET GLOBAL binlog_row_value_options='';")
    assert check_binlog_row_image(_ctx(binlog_row_image="FULL", binlog_row_value_options=""))[0] == PASSED
    assert check_binlog_row_image(_ctx(binlog_row_image="MINIMAL"))[0] == FAILED


def test_precheck_fails_without_full_row_metadata() -> None:
    assert check_binlog_row_metadata(_ctx(binlog_row_metadata="FULL"))[0] == PASSED
    result, reason, fix = check_binlog_row_metadata(_ctx(binlog_row_metadata="MINIMAL"))
    assert result == FAILED and "MINIMAL" in reason and fix.startswith("SET GLOBAL binlog_row_metadata='FULL'")
    result, reason, fix = check_binlog_row_metadata(_ctx())  # MySQL 5.7: no such variable
    assert result == FAILED and "no binlog_row_metadata" in reason and "8.0.1" in fix


# ---- FLOAT as DOUBLE on every version ----------------------------------------------------------------


def _info(version: str) -> ServerInfo:
    family = "mariadb" if "mariadb" in version.lower() else "mysql"
    return ServerInfo(version, family, (0, 0), 1, "h", 3306, None)


@pytest.mark.parametrize(
    ("version", "cast"),
    [("5.7.44-log", False), ("8.0.16", False), ("8.0.17", True), ("8.4.2", True), ("10.3.39-MariaDB", False),
     ("10.4.0-MariaDB-log", True), ("10.11.19-MariaDB-0+deb12u1", True), ("11.4.2-MariaDB", True)],
)  # fmt: skip
def test_float_as_double_by_version(version: str, cast: bool) -> None:
    assert supports_cast_double(_info(version)) is cast
    assert float_as_double_sql("`f`", _info(version)) == ("CAST(`f` AS DOUBLE)" if cast else "(`f` * 1e0)")
    assert float_as_double_sql("`f`", None) == "(`f` * 1e0)"


FLOATS = [0.0, -0.0, 1.0, -1.0, 0.1, 1.0000001, 3.4028234663852886e38, -3.4028234663852886e38, 1.1754943508222875e-38,
          1.401298464324817e-45, -1.401298464324817e-45, 16777216.0, 16777217.0, 123456.789, 2.0**-126 * 0.5, 1e-10, 7e20]  # fmt: skip


def test_float_as_double_forms_print_alike(dbs: Any) -> None:
    """CAST(f AS DOUBLE) and (f * 1e0) give the same text for every FLOAT, extremes included."""
    src = dbs.source
    src.sql("CREATE DATABASE fd", "CREATE TABLE fd.t (id INT PRIMARY KEY, f FLOAT, g FLOAT(7,4), u FLOAT UNSIGNED)")
    def dbl(v: float) -> str:
        return repr(v) if "e" in repr(v) else f"{v!r}e0"

    rows = [f"({i}, {dbl(v)}, {dbl(max(min(v, 999.9999), -999.9999))}, {dbl(abs(v))})" for i, v in enumerate(FLOATS)]
    src.sql("INSERT INTO fd.t VALUES " + ",".join(rows) + ", (99, NULL, NULL, NULL)")
    new, old = _info("10.11.0-MariaDB"), _info("10.3.0-MariaDB")
    columns = [f"IFNULL({float_as_double_sql(c, info)},'NULL')" for c in ("f", "g", "u") for info in (new, old)]
    result = src.sql(f"SELECT id, {', '.join(columns)} FROM fd.t ORDER BY id")
    assert len(result) == len(FLOATS) + 1
    for row in result:
        for cast, mult in zip(row[1::2], row[2::2], strict=True):
            assert cast == mult, row
    # and the text reads back as the stored FLOAT, exactly
    for row in result[:-1]:
        stored = struct.unpack("<f", struct.pack("<f", FLOATS[row[0]]))[0]
        assert float(row[1]) == stored or (math.isclose(stored, 0) and float(row[1]) == 0)


# ---- parse_fast on MySQL events -------------------------------------------------------------------------


def _mysql_gtid_body(sid: bytes, gno: int) -> bytes:
    # commit flag, SID, GNO, logical clock (type 2: last_committed, sequence_number), MySQL 8 tail:
    # immediate commit timestamp (7 bytes), transaction length, server versions
    return b"\x00" + sid + gno.to_bytes(8, "little") + b"\x02" + (3).to_bytes(8, "little") + (4).to_bytes(8, "little") \
        + (1_700_000_000_000_000).to_bytes(7, "little") + b"\xfc\x10\x02" + (80036).to_bytes(4, "little")  # fmt: skip


def _query_body(schema: bytes, query: bytes, status: bytes) -> bytes:
    return (9).to_bytes(4, "little") + (0).to_bytes(4, "little") + bytes([len(schema)]) + b"\x00\x00" \
        + len(status).to_bytes(2, "little") + status + schema + b"\x00" + query  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(
    sid=st.binary(min_size=16, max_size=16), gno=st.integers(1, (1 << 63) - 1),
    schema=st.text(st.characters(min_codepoint=48, max_codepoint=0x2FF), max_size=20).map(str.encode),
    query=st.text(max_size=60).map(lambda q: ("CREATE TABLE t (v INT) COMMENT '" + q + "'").encode()),
    status=st.sampled_from([b"", b"\x00" + (0).to_bytes(4, "little"), b"\x00\x00\x00\x00\x00\x01" + (1 << 30).to_bytes(8, "little")]),
    xid=st.integers(0, (1 << 64) - 1), partition=st.one_of(st.none(), st.integers(0, 65535)),
    rows=st.lists(st.integers(-(1 << 31), (1 << 31) - 1), min_size=1, max_size=5),
)  # fmt: skip
def test_parse_fast_matches_the_library_on_mysql_events(sid: bytes, gno: int, schema: bytes, query: bytes, status: bytes,
                                                        xid: int, partition: int | None, rows: list[int]) -> None:  # fmt: skip
    cols = [int_col("id", 4, False, primary=True)]
    extra = b"" if partition is None else b"\x01" + partition.to_bytes(2, "little")
    body = rows_body("insert", 21, cols, [(r,) for r in rows])
    body = body[:8] + (2 + len(extra)).to_bytes(2, "little") + extra + body[10:]  # extra row data: partition id
    packets = [
        event_packet(MYSQL_GTID, _mysql_gtid_body(sid, gno), log_pos=100, timestamp=11),
        event_packet(2, _query_body(schema, query, status), log_pos=200, timestamp=12),
        event_packet(TABLE_MAP_EVENT, table_map_body(21, "db", "t", cols), log_pos=300),
        event_packet(30, body, log_pos=400, timestamp=13),
        event_packet(16, xid.to_bytes(8, "little"), log_pos=500, timestamp=14),
    ]
    library = fake_stream(packets, cls=BinLogStreamReader)
    library.mysql_version = (8, 0, 36)
    with library_rows():
        lib = [e for e in drain(library) if type(e).__name__ != "TableMapEvent"]
        lib_rows = [r["values"]["id"] for r in lib[2].rows]
    ours = [parse_fast(p, True) for p in packets if p[5] != TABLE_MAP_EVENT]
    (gtid, pos1), (q, pos2), (r, pos3), (x, pos4) = ours
    assert [pos1, pos2, pos3, pos4] == [e.packet.log_pos for e in lib]
    assert gtid.gtid == lib[0].gtid
    assert (q.schema, q.query, q.timestamp) == (lib[1].schema.decode(), lib[1].query, lib[1].timestamp)
    assert (r.table_id, r.kind, r.timestamp) == (lib[2].table_id, "insert", 13)
    stream = fake_stream(packets[2:3])
    stream.fetchone()
    decoded = rowdecode.decode_rows(r.data, r.offset, r.end, rowdecode.table_decoders(stream.table_map[21]), r.bitmap1, None)
    assert decoded == [(str(v),) for v in lib_rows] == [(str(v),) for v in rows]
    assert x.timestamp == lib[3].timestamp == 14 and lib[3].xid == xid
