"""Fast, exact decoding of binlog row images straight into SQL literals.

python-mysql-replication decodes every value into a Python object (and loses zero dates, empty
SETs, negative TIME fractions and latin1 bytes on the way); we replace its per-row decoder with one
that reads the event body once and turns each column into the SQL literal that reproduces the
stored value byte for byte: numbers as text, strings and blobs as hex with their charset, ENUM/SET
as their index/bitmask, BIT as an integer, temporal values as quoted text (zero dates included).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import struct
from collections.abc import Callable

from pymysqlreplication import row_event
from pymysqlreplication.constants import FIELD_TYPE

from engine.errors import Unreplicable

NULL = "NULL"
_u16 = struct.Struct("<H").unpack_from
_u32 = struct.Struct("<I").unpack_from
_f32 = struct.Struct("<f").unpack_from
_f64 = struct.Struct("<d").unpack_from
_EPOCH = dt.datetime(1970, 1, 1)

# A decoder takes (buffer, offset) and returns (literal, new offset).
Decoder = Callable[[bytes, int], tuple[str, int]]


def _int_decoder(size: int, unsigned: bool) -> Decoder:
    def dec(buf: bytes, off: int) -> tuple[str, int]:
        return str(int.from_bytes(buf[off : off + size], "little", signed=not unsigned)), off + size

    return dec


def _float(buf: bytes, off: int) -> tuple[str, int]:
    # repr() is the shortest text that parses back to the same double; a FLOAT widened to double
    # and parsed back rounds to the same FLOAT. "-0.0" would be a DECIMAL literal, which has no
    # negative zero: "-0e0" is the DOUBLE -0 (MySQL can store it; MariaDB stores 0 either way).
    lit = repr(_f32(buf, off)[0])
    return (lit if lit != "-0.0" else "-0e0"), off + 4


def _double(buf: bytes, off: int) -> tuple[str, int]:
    lit = repr(_f64(buf, off)[0])
    return (lit if lit != "-0.0" else "-0e0"), off + 8


_DIG2BYTES = (0, 1, 1, 2, 2, 3, 3, 4, 4, 4)


def _decimal_decoder(precision: int, scale: int) -> Decoder:
    intg = precision - scale
    intg0, intg_rest = divmod(intg, 9)
    frac0, frac_rest = divmod(scale, 9)
    size = intg0 * 4 + _DIG2BYTES[intg_rest] + frac0 * 4 + _DIG2BYTES[frac_rest]
    # The value read as one big-endian integer: the sign bit flipped (and, when negative, every bit),
    # it is a row of base-10**9 groups (a shorter one at each end), which shifts take apart.
    sign_bit = 1 << (size * 8 - 1)
    negative_mask = sign_bit - 1  # flips every bit but the sign bit, which is clear on negatives
    frac_bits = _DIG2BYTES[frac_rest] * 8 + frac0 * 32
    frac_mask = (1 << frac_bits) - 1
    # (bits, weight) of each group, least significant first
    frac_groups = [(_DIG2BYTES[frac_rest] * 8, 1)] + [(32, 10 ** (frac_rest + 9 * k)) for k in range(frac0)]
    int_groups = [(32, 10 ** (9 * k)) for k in range(intg0)]
    int_groups.append((_DIG2BYTES[intg_rest] * 8, 10 ** (9 * intg0)))
    simple = intg0 == 0 and frac0 == 0  # at most 8 digits on each side: one group each, no arithmetic

    def groups(v: int, layout: list[tuple[int, int]]) -> int:
        number = 0
        for bits, weight in layout:
            number += (v & ((1 << bits) - 1)) * weight
            v >>= bits
        return number

    text_of = f"%d.%0{scale}d" if scale else "%d%.0s"  # one %-format per value, made once

    def dec(buf: bytes, off: int) -> tuple[str, int]:
        v = int.from_bytes(buf[off : off + size], "big")
        if v & sign_bit:
            v ^= sign_bit
            if simple:
                return text_of % (v >> frac_bits, v & frac_mask), off + size
            return text_of % (groups(v >> frac_bits, int_groups), groups(v & frac_mask, frac_groups)), off + size
        v ^= negative_mask
        if simple:
            return "-" + text_of % (v >> frac_bits, v & frac_mask), off + size
        return "-" + text_of % (groups(v >> frac_bits, int_groups), groups(v & frac_mask, frac_groups)), off + size

    return dec


def _frac(buf: bytes, off: int, fsp: int) -> tuple[int, int]:
    """Fractional seconds (as microseconds) of the new temporal formats, big-endian."""
    n = (fsp + 1) // 2
    if not n:
        return 0, off
    value = int.from_bytes(buf[off : off + n], "big")
    return value * 10 ** (6 - 2 * n), off + n


def _datetime2_decoder(fsp: int) -> Decoder:
    n = (fsp + 1) // 2
    scale = 10 ** (6 - 2 * n)

    # bits: 1 sign, 17 year*13+month, 5 day, 5 hour, 6 minute, 6 second; one %-format per value (a
    # third of the time of an f-string with a format spec per field: every DATETIME of every row)
    def dec(buf: bytes, off: int) -> tuple[str, int]:
        packed = int.from_bytes(buf[off : off + 5], "big") - 0x8000000000
        end = off + 5 + n
        ym, hms = packed >> 22, packed & 0x1FFFF
        micro = int.from_bytes(buf[off + 5 : end], "big") * scale  # fractional seconds (see _frac)
        return _DATETIME6 % (ym // 13, ym % 13, (packed >> 17) & 0x1F, hms >> 12, (hms >> 6) & 0x3F, hms & 0x3F, micro), end

    def dec0(buf: bytes, off: int) -> tuple[str, int]:
        packed = int.from_bytes(buf[off : off + 5], "big") - 0x8000000000
        ym, hms = packed >> 22, packed & 0x1FFFF
        return _DATETIME0 % (ym // 13, ym % 13, (packed >> 17) & 0x1F, hms >> 12, (hms >> 6) & 0x3F, hms & 0x3F), off + 5

    return dec if fsp else dec0


_DATETIME6 = "'%04d-%02d-%02d %02d:%02d:%02d.%06d'"
_DATETIME0 = "'%04d-%02d-%02d %02d:%02d:%02d'"


def _timestamp2_decoder(fsp: int) -> Decoder:
    def dec(buf: bytes, off: int) -> tuple[str, int]:
        seconds = int.from_bytes(buf[off : off + 4], "big")
        micro, end = _frac(buf, off + 4, fsp)
        if seconds == 0 and micro == 0:
            return "'0000-00-00 00:00:00'", end
        # The apply session runs with time_zone '+00:00', so UTC text stores the same instant.
        text = f"{_EPOCH + dt.timedelta(seconds=seconds):%Y-%m-%d %H:%M:%S}"
        if fsp:
            text += f".{micro:06d}"
        return f"'{text}'", end

    return dec


def _time2_decoder(fsp: int) -> Decoder:
    n = (fsp + 1) // 2

    def dec(buf: bytes, off: int) -> tuple[str, int]:
        # my_time_packed_from_binary(): integer part offset by 0x800000, fraction follows.
        if n == 3:
            packed = int.from_bytes(buf[off : off + 6], "big") - 0x800000000000
        else:
            intpart = int.from_bytes(buf[off : off + 3], "big") - 0x800000
            frac = int.from_bytes(buf[off + 3 : off + 3 + n], "big") if n else 0
            if intpart < 0 and frac:
                intpart += 1
                frac -= 0x100 if n == 1 else 0x10000
            packed = (intpart << 24) + frac * (10000 if n == 1 else 100)
        sign = "-" if packed < 0 else ""
        packed = abs(packed)
        hms, micro = packed >> 24, packed & 0xFFFFFF
        text = f"{sign}{(hms >> 12) & 0x3FF:02d}:{(hms >> 6) & 0x3F:02d}:{hms & 0x3F:02d}"
        if fsp:
            text += f".{micro:06d}"
        return f"'{text}'", off + 3 + n

    return dec


def _date(buf: bytes, off: int) -> tuple[str, int]:
    v = int.from_bytes(buf[off : off + 3], "little")
    return f"'{v >> 9:04d}-{(v >> 5) & 0xF:02d}-{v & 0x1F:02d}'", off + 3


def _datetime_old(buf: bytes, off: int) -> tuple[str, int]:
    v = int.from_bytes(buf[off : off + 8], "little")
    d, t = divmod(v, 1000000)
    return (
        f"'{d // 10000:04d}-{d // 100 % 100:02d}-{d % 100:02d} {t // 10000:02d}:{t // 100 % 100:02d}:{t % 100:02d}'",
        off + 8,
    )


def _time_old(buf: bytes, off: int) -> tuple[str, int]:
    v = int.from_bytes(buf[off : off + 3], "little", signed=True)
    sign, v = ("-" if v < 0 else ""), abs(v)
    return f"'{sign}{v // 10000:02d}:{v // 100 % 100:02d}:{v % 100:02d}'", off + 3


def _timestamp_old(buf: bytes, off: int) -> tuple[str, int]:
    seconds = _u32(buf, off)[0]
    if not seconds:
        return "'0000-00-00 00:00:00'", off + 4
    return f"'{_EPOCH + dt.timedelta(seconds=seconds):%Y-%m-%d %H:%M:%S}'", off + 4


def _year(buf: bytes, off: int) -> tuple[str, int]:
    v = buf[off]
    return ("0" if v == 0 else str(1900 + v)), off + 1


def _hex_literal(data: bytes, charset: str | None) -> str:
    # Hex keeps every byte; the introducer keeps the column's charset so indexes stay usable.
    if charset and charset != "binary":
        return f"_{charset} X'{data.hex()}'"
    return f"X'{data.hex()}'"


def _string_decoder(length_size: int, charset: str | None) -> Decoder:
    intro = f"_{charset} X'" if charset and charset != "binary" else "X'"

    def dec(buf: bytes, off: int) -> tuple[str, int]:
        length = int.from_bytes(buf[off : off + length_size], "little")
        start = off + length_size
        return intro + buf[start : start + length].hex() + "'", start + length

    return dec


def _fixed_binary_decoder(length_size: int, width: int) -> Decoder:
    """BINARY(n) and the types stored like it (INET6, UUID): the binlog drops trailing zero bytes
    (Field_string::pack strips the pad character, 0x00 for binary); the DR row needs all n bytes back,
    or a key no longer matches and INET6/UUID would get a short value."""

    def dec(buf: bytes, off: int) -> tuple[str, int]:
        length = int.from_bytes(buf[off : off + length_size], "little")
        start = off + length_size
        return "X'" + buf[start : start + length].ljust(width, b"\0").hex() + "'", start + length

    return dec


def _uint_decoder(size: int) -> Decoder:
    def dec(buf: bytes, off: int) -> tuple[str, int]:
        return str(int.from_bytes(buf[off : off + size], "little")), off + size

    return dec


def _bit_decoder(nbytes: int) -> Decoder:
    def dec(buf: bytes, off: int) -> tuple[str, int]:
        return str(int.from_bytes(buf[off : off + nbytes], "big")), off + nbytes

    return dec


def _json_decoder(length_size: int) -> Decoder:
    """MySQL's binary JSON (MariaDB stores JSON as text and never gets here)."""

    def dec(buf: bytes, off: int) -> tuple[str, int]:
        length = int.from_bytes(buf[off : off + length_size], "little")
        start = off + length_size
        return json_literal(buf[start : start + length]), start + length

    return dec


# ---- MySQL binary JSON --------------------------------------------------------------------------
# Format: sql-common/json_binary.h. A document is a type byte and a value; objects and arrays hold
# entries (key offset/length, value type and offset, or the value itself when it fits) whose offsets
# count from the start of the container. The DR side rebuilds the value from what we send, so what
# we send must parse back to the same JSON DOM: same types, same numbers. JSON text does that for
# most documents; where text cannot (a DECIMAL/DATE/TIME inside the JSON, an unsigned integer that
# text would read as signed or the reverse, a double that the server's text parser, rapidjson in
# normal-precision mode, could round differently), that part is built with JSON_OBJECT/JSON_ARRAY
# over SQL values of the right type.

_J_OBJ, _J_ARR, _J_LIT, _J_INT, _J_UINT, _J_DBL, _J_STR, _J_OPQ = range(8)
_JSON_LITERALS = {0: "null", 1: "true", 2: "false"}
_UINT32_MAX = 0xFFFFFFFF
_MYSQL_DECIMAL, _MYSQL_TIMESTAMP, _MYSQL_DATE, _MYSQL_TIME, _MYSQL_DATETIME = 246, 7, 10, 11, 12


class JsonError(ValueError):
    """Bytes that are not MySQL binary JSON."""


def _varlen(data: bytes, pos: int) -> tuple[int, int]:
    """data-length of json_binary.h: 7 bits a byte, low bits first, high bit = more bytes."""
    value = 0
    for i in range(5):
        b = data[pos + i]
        value |= (b & 0x7F) << (7 * i)
        if not b & 0x80:
            return value, pos + i + 1
    raise JsonError("a length of more than 5 bytes")


def _json_value(t: int, data: bytes, pos: int, end: int) -> tuple:
    """The node (kind, ...) of the value of type `t` stored at data[pos:] (a container: up to end)."""
    if t in (0, 1, 2, 3):
        large = t in (1, 3)
        osize = 4 if large else 2
        count = int.from_bytes(data[pos : pos + osize], "little")
        size = int.from_bytes(data[pos + osize : pos + 2 * osize], "little")
        if pos + size > end or size < 2 * osize:
            raise JsonError("a container larger than its parent")
        end = pos + size
        is_object = t in (0, 1)
        entry = 2 * osize
        keys: list[bytes] = []
        if is_object:
            for _ in range(count):
                koff = int.from_bytes(data[pos + entry : pos + entry + osize], "little")
                klen = _u16(data, pos + entry + osize)[0]
                if pos + koff + klen > end:
                    raise JsonError("a key outside its object")
                keys.append(bytes(data[pos + koff : pos + koff + klen]))
                entry += osize + 2
        values = []
        for _ in range(count):
            vt = data[pos + entry]
            if vt == 4 or vt == 5 or vt == 6 or (large and vt in (7, 8)):  # inlined in the entry
                values.append(_json_value(vt, data, pos + entry + 1, end))
            else:
                voff = int.from_bytes(data[pos + entry + 1 : pos + entry + 1 + osize], "little")
                if voff >= size:
                    raise JsonError("a value outside its container")
                values.append(_json_value(vt, data, pos + voff, end))
            entry += 1 + osize
        if pos + entry > end:
            raise JsonError("a header larger than its container")
        return (_J_OBJ, list(zip(keys, values, strict=True))) if is_object else (_J_ARR, values)
    if t == 4:
        lit = _JSON_LITERALS.get(data[pos])
        if lit is None:
            raise JsonError(f"literal {data[pos]}")
        return (_J_LIT, lit)
    if t in (5, 7, 9):
        n = {5: 2, 7: 4, 9: 8}[t]
        if pos + n > len(data):
            raise JsonError("a truncated number")
        return (_J_INT, int.from_bytes(data[pos : pos + n], "little", signed=True))
    if t in (6, 8, 10):
        n = {6: 2, 8: 4, 10: 8}[t]
        if pos + n > len(data):
            raise JsonError("a truncated number")
        return (_J_UINT, int.from_bytes(data[pos : pos + n], "little"))
    if t == 11:
        return (_J_DBL, _f64(data, pos)[0])
    if t == 12:
        n, p = _varlen(data, pos)
        if p + n > len(data):
            raise JsonError("a truncated string")
        return (_J_STR, bytes(data[p : p + n]))
    if t == 15:
        ftype = data[pos]
        n, p = _varlen(data, pos + 1)
        if p + n > len(data):
            raise JsonError("a truncated opaque value")
        return (_J_OPQ, ftype, bytes(data[p : p + n]))
    raise JsonError(f"value type {t}")


def _json_string(raw: bytes) -> str:
    # utf8mb4 by definition; invalid bytes (never written by MySQL) survive as themselves
    return json.dumps(raw.decode("utf-8", "surrogateescape"), ensure_ascii=False)


def _double_text_exact(text: str) -> bool:
    """Does rapidjson's normal-precision parser read `text` (Python's repr) back as the same double?

    It reads at most 2**53-1 as the significand and scales it by one power of ten: exact when the
    significand fits and the power is at most 22 (both operands exact, one rounding).
    """
    mantissa, _, exp = text.partition("e")
    whole, _, frac = mantissa.lstrip("-").partition(".")
    digits = (whole + frac).lstrip("0") or "0"
    power = int(exp or 0) - len(frac)
    return len(digits) <= 16 and int(digits) < (1 << 53) and -22 <= power <= 22


def _packed_time(raw: bytes, ftype: int) -> str:
    """The text of a DATE/TIME/DATETIME/TIMESTAMP packed into an int64 (my_time.h's *_packed)."""
    v = int.from_bytes(raw[:8], "little", signed=True)
    sign = "-" if v < 0 else ""
    v = abs(v)
    micro, whole = v & 0xFFFFFF, v >> 24
    if ftype == _MYSQL_TIME:
        hms = whole
        return f"{sign}{(hms >> 12) & 0x3FF:02d}:{(hms >> 6) & 0x3F:02d}:{hms & 0x3F:02d}.{micro:06d}"
    ymd, hms = whole >> 17, whole & 0x1FFFF
    year, month = divmod(ymd >> 5, 13)
    date = f"{year:04d}-{month:02d}-{ymd & 0x1F:02d}"
    if ftype == _MYSQL_DATE:
        return date
    return f"{date} {hms >> 12:02d}:{(hms >> 6) & 0x3F:02d}:{hms & 0x3F:02d}.{micro:06d}"


def _json_text(node: tuple) -> str | None:
    """JSON text that parses back to `node`, or None when text cannot say it (see above)."""
    kind = node[0]
    if kind == _J_STR:
        return _json_string(node[1])
    if kind == _J_LIT:
        return node[1]
    if kind == _J_INT:
        # rapidjson hands a non-negative integer above 2**32-1 over as unsigned
        return str(node[1]) if node[1] <= _UINT32_MAX else None
    if kind == _J_UINT:
        return str(node[1]) if node[1] > _UINT32_MAX else None
    if kind == _J_DBL:
        text = repr(node[1])
        return text if math.isfinite(node[1]) and _double_text_exact(text) else None
    if kind == _J_ARR:
        parts = [_json_text(v) for v in node[1]]
        return None if None in parts else "[" + ", ".join(parts) + "]"  # type: ignore[arg-type]
    if kind == _J_OBJ:
        parts = []
        for key, value in node[1]:
            text = _json_text(value)
            if text is None:
                return None
            parts.append(_json_string(key) + ": " + text)
        return "{" + ", ".join(parts) + "}"
    return None  # opaque: DECIMAL, dates and times, binary strings


def _utf8_hex(text: str) -> str:
    return "_utf8mb4 X'" + text.encode("utf-8", "surrogateescape").hex() + "'"


def _json_sql(node: tuple) -> str:
    """An SQL expression whose JSON value is `node`: as an argument of JSON_OBJECT/JSON_ARRAY."""
    text = _json_text(node)
    kind = node[0]
    if text is not None:
        if kind == _J_STR:
            return "_utf8mb4 X'" + node[1].hex() + "'"  # a string argument is a JSON string
        return f"CAST({_utf8_hex(text)} AS JSON)"
    if kind == _J_ARR:
        return "JSON_ARRAY(" + ",".join(_json_sql(v) for v in node[1]) + ")"
    if kind == _J_OBJ:
        return "JSON_OBJECT(" + ",".join(f"_utf8mb4 X'{k.hex()}',{_json_sql(v)}" for k, v in node[1]) + ")"
    if kind == _J_INT:
        return str(node[1])  # an integer literal is a signed integer
    if kind == _J_UINT:
        return f"CAST({node[1]} AS UNSIGNED)"
    if kind == _J_DBL:
        if not math.isfinite(node[1]):
            raise JsonError(f"a non-finite double ({node[1]})")
        text = repr(node[1])
        return text if "e" in text else text + "e0"  # an approximate-value literal: a DOUBLE, exact
    ftype, raw = node[1], node[2]
    if ftype == _MYSQL_DECIMAL and len(raw) >= 2:
        precision, scale = raw[0], raw[1]
        value = _decimal_decoder(precision, scale)(raw, 2)[0]
        return f"CAST('{value}' AS DECIMAL({precision},{scale}))"
    if ftype == _MYSQL_DATE and len(raw) >= 8:
        return f"CAST('{_packed_time(raw, ftype)}' AS DATE)"
    if ftype == _MYSQL_TIME and len(raw) >= 8:
        return f"CAST('{_packed_time(raw, ftype)}' AS TIME(6))"
    if ftype in (_MYSQL_DATETIME, _MYSQL_TIMESTAMP) and len(raw) >= 8:
        return f"CAST('{_packed_time(raw, ftype)}' AS DATETIME(6))"
    return f"_binary X'{raw.hex()}'"  # any other MySQL type: an opaque binary value


def json_literal(data: bytes) -> str:
    """The SQL expression of a MySQL binary JSON document, for a JSON column."""
    if not data:  # an empty value (INSERT IGNORE of NULL into NOT NULL) reads as the null literal
        return "CAST('null' AS JSON)"
    try:
        node = _json_value(data[0], data, 1, len(data))
        text = _json_text(node)
        if text is not None:
            return f"CAST({_utf8_hex(text)} AS JSON)"
        if node[0] in (_J_ARR, _J_OBJ):
            return _json_sql(node)
        return f"CAST({_json_sql(node)} AS JSON)"
    except (IndexError, struct.error, JsonError) as exc:
        raise Unreplicable(
            f"a JSON value in the binlog is not valid MySQL binary JSON ({exc}); its bytes: {bytes(data[:64]).hex()}"
            + ("..." if len(data) > 64 else "")
        ) from None


def _charset_of(column: object) -> str | None:
    collation = getattr(column, "collation_name", None)
    if not collation:
        return None
    return "binary" if collation == "binary" else collation.split("_", 1)[0]


def column_decoder(column: object) -> Decoder:
    t = column.type  # type: ignore[attr-defined]
    unsigned = bool(getattr(column, "unsigned", False))
    if t == FIELD_TYPE.TINY:
        return _int_decoder(1, unsigned)
    if t == FIELD_TYPE.SHORT:
        return _int_decoder(2, unsigned)
    if t == FIELD_TYPE.INT24:
        return _int_decoder(3, unsigned)
    if t == FIELD_TYPE.LONG:
        return _int_decoder(4, unsigned)
    if t == FIELD_TYPE.LONGLONG:
        return _int_decoder(8, unsigned)
    if t == FIELD_TYPE.FLOAT:
        return _float
    if t == FIELD_TYPE.DOUBLE:
        return _double
    if t == FIELD_TYPE.NEWDECIMAL:
        return _decimal_decoder(column.precision, column.decimals)  # type: ignore[attr-defined]
    if t == FIELD_TYPE.YEAR:
        return _year
    if t in (FIELD_TYPE.DATE, FIELD_TYPE.NEWDATE):
        return _date
    if t == FIELD_TYPE.DATETIME2:
        return _datetime2_decoder(column.fsp)  # type: ignore[attr-defined]
    if t == FIELD_TYPE.TIMESTAMP2:
        return _timestamp2_decoder(column.fsp)  # type: ignore[attr-defined]
    if t == FIELD_TYPE.TIME2:
        return _time2_decoder(column.fsp)  # type: ignore[attr-defined]
    if t == FIELD_TYPE.DATETIME:
        return _datetime_old
    if t == FIELD_TYPE.TIME:
        return _time_old
    if t == FIELD_TYPE.TIMESTAMP:
        return _timestamp_old
    if t == FIELD_TYPE.STRING and _charset_of(column) == "binary":
        return _fixed_binary_decoder(2 if column.max_length > 255 else 1, column.max_length)  # type: ignore[attr-defined]
    if t in (FIELD_TYPE.VARCHAR, FIELD_TYPE.VAR_STRING, FIELD_TYPE.STRING):
        return _string_decoder(2 if column.max_length > 255 else 1, _charset_of(column))  # type: ignore[attr-defined]
    if t in (FIELD_TYPE.BLOB, FIELD_TYPE.TINY_BLOB, FIELD_TYPE.MEDIUM_BLOB, FIELD_TYPE.LONG_BLOB):
        return _string_decoder(column.length_size, _charset_of(column))  # type: ignore[attr-defined]
    if t == FIELD_TYPE.GEOMETRY:
        return _string_decoder(column.length_size, None)  # type: ignore[attr-defined]
    if t == FIELD_TYPE.JSON:
        return _json_decoder(column.length_size)  # type: ignore[attr-defined]
    if t in (FIELD_TYPE.ENUM, FIELD_TYPE.SET):
        return _uint_decoder(column.size)  # type: ignore[attr-defined]
    if t == FIELD_TYPE.BIT:
        return _bit_decoder(column.bytes)  # type: ignore[attr-defined]
    raise NotImplementedError(f"column type {t} is not supported by the DR engine")


def table_decoders(table: object) -> list[Decoder]:
    """Decoders for a table map entry, computed once per table map (cached on the object)."""
    decoders = getattr(table, "_drs_decoders", None)
    if decoders is None:
        refuse_unusable(table)
        decoders = [column_decoder(c) for c in table.columns]  # type: ignore[attr-defined]
        table._drs_decoders = decoders  # type: ignore[attr-defined]
    return decoders


# ---- compiled image decoders --------------------------------------------------------------------
# Per table, a function is generated that decodes a whole full row image with no per-column call
# for the common types (integers, floats, strings); temporal and decimal values go through their
# decoder with a small cache keyed on the stored bytes (OLTP rows repeat timestamps and amounts).
# A second variant decodes only the primary key and skips the other columns: before-images and
# deletes of tables with a key are only ever addressed by their key.

ImageDecoder = Callable[[bytes, int], tuple[tuple[str | None, ...], int]]
_STRUCTS = {(1, False): "<b", (1, True): "<B", (2, False): "<h", (2, True): "<H", (4, False): "<i", (4, True): "<I", (8, False): "<q", (8, True): "<Q"}
_INT_SIZES = {FIELD_TYPE.TINY: 1, FIELD_TYPE.SHORT: 2, FIELD_TYPE.INT24: 3, FIELD_TYPE.LONG: 4, FIELD_TYPE.LONGLONG: 8}
MEMO_LIMIT = 4096  # entries per column; bounded so a long-running stream keeps a flat memory


def _remember(cache: dict[bytes, str], key: bytes, literal: str) -> str:
    if len(cache) >= MEMO_LIMIT:
        cache.clear()
    cache[key] = literal
    return literal


def _fixed_width(column: object) -> int | None:
    t = column.type  # type: ignore[attr-defined]
    if t in _INT_SIZES:
        return _INT_SIZES[t]
    frac = (getattr(column, "fsp", 0) + 1) // 2
    return {
        FIELD_TYPE.FLOAT: 4, FIELD_TYPE.DOUBLE: 8, FIELD_TYPE.YEAR: 1, FIELD_TYPE.DATE: 3, FIELD_TYPE.NEWDATE: 3,
        FIELD_TYPE.DATETIME2: 5 + frac, FIELD_TYPE.TIMESTAMP2: 4 + frac, FIELD_TYPE.TIME2: 3 + frac,
        FIELD_TYPE.DATETIME: 8, FIELD_TYPE.TIME: 3, FIELD_TYPE.TIMESTAMP: 4,
        FIELD_TYPE.ENUM: getattr(column, "size", 0), FIELD_TYPE.SET: getattr(column, "size", 0),
        FIELD_TYPE.BIT: getattr(column, "bytes", 0),
        FIELD_TYPE.NEWDECIMAL: _decimal_size(column) if t == FIELD_TYPE.NEWDECIMAL else 0,
    }.get(t)  # fmt: skip


def _decimal_size(column: object) -> int:
    intg0, intg_rest = divmod(column.precision - column.decimals, 9)  # type: ignore[attr-defined]
    frac0, frac_rest = divmod(column.decimals, 9)  # type: ignore[attr-defined]
    return intg0 * 4 + _DIG2BYTES[intg_rest] + frac0 * 4 + _DIG2BYTES[frac_rest]


def _length_prefix(column: object) -> int | None:
    t = column.type  # type: ignore[attr-defined]
    if t in (FIELD_TYPE.VARCHAR, FIELD_TYPE.VAR_STRING, FIELD_TYPE.STRING):
        return 2 if column.max_length > 255 else 1  # type: ignore[attr-defined]
    if t in (FIELD_TYPE.BLOB, FIELD_TYPE.TINY_BLOB, FIELD_TYPE.MEDIUM_BLOB, FIELD_TYPE.LONG_BLOB, FIELD_TYPE.GEOMETRY, FIELD_TYPE.JSON):
        return column.length_size  # type: ignore[attr-defined]
    return None


def compile_image_decoder(columns: list, wanted: list[bool]) -> ImageDecoder:
    """Generate the decoder of a full row image; columns not `wanted` are skipped (value None)."""
    env: dict[str, object] = {"NULL": NULL, "_from": int.from_bytes, "_remember": _remember}
    lines = ["def image(buf, o):"]
    nbytes = (len(columns) + 7) >> 3
    for b in range(nbytes):
        lines.append(f"    n{b} = buf[o + {b}]")
    lines.append(f"    o += {nbytes}")
    names = []
    for i, column in enumerate(columns):
        v = f"v{i}"
        names.append(v)
        t = column.type
        width = _fixed_width(column)
        prefix = _length_prefix(column)
        null_test = f"n{i >> 3} & {1 << (i & 7)}"
        if not wanted[i]:
            lines.append(f"    {v} = None")
            if width is not None:
                lines.append(f"    if not ({null_test}): o += {width}")
            elif prefix is not None:
                size = "buf[o]" if prefix == 1 else f"_from(buf[o:o + {prefix}], 'little')"
                lines.append(f"    if not ({null_test}): o += {prefix} + {size}")
            else:
                raise NotImplementedError(f"column type {t} cannot be skipped")
            continue
        lines.append(f"    if {null_test}:")
        lines.append(f"        {v} = NULL")
        lines.append("    else:")
        unsigned = bool(getattr(column, "unsigned", False))
        if t in _INT_SIZES and (_INT_SIZES[t], unsigned) in _STRUCTS:
            size = _INT_SIZES[t]
            env[f"s{i}"] = struct.Struct(_STRUCTS[(size, unsigned)]).unpack_from
            lines.append(f"        {v} = str(s{i}(buf, o)[0]); o += {size}")
        elif t in (FIELD_TYPE.VARCHAR, FIELD_TYPE.VAR_STRING, FIELD_TYPE.STRING) and prefix == 1 and not (
            t == FIELD_TYPE.STRING and _charset_of(column) == "binary"
        ):
            charset = _charset_of(column)
            env[f"p{i}"] = f"_{charset} X'" if charset and charset != "binary" else "X'"
            lines.append(f"        n = buf[o]; {v} = p{i} + buf[o + 1:o + 1 + n].hex() + \"'\"; o += 1 + n")
        else:
            env[f"d{i}"] = column_decoder(column)
            if width is not None and t not in _INT_SIZES and t not in (FIELD_TYPE.FLOAT, FIELD_TYPE.DOUBLE):
                # the cache lookup inline: a hit (most temporal and decimal values) costs no call
                env[f"c{i}"] = {}
                lines.append(f"        k = buf[o:o + {width}]; {v} = c{i}.get(k)")
                lines.append(f"        if {v} is None: {v} = _remember(c{i}, k, d{i}(buf, o)[0])")
                lines.append(f"        o += {width}")
            else:
                lines.append(f"        {v}, o = d{i}(buf, o)")
    lines.append(f"    return ({', '.join(names)}{',' if len(names) == 1 else ''}), o")
    exec(compile("\n".join(lines), f"<row image decoder {len(columns)} columns>", "exec"), env)  # noqa: S102 - generated from column types only
    return env["image"]  # type: ignore[return-value]


def table_image_decoders(table: object) -> tuple[ImageDecoder, ImageDecoder]:
    """(full image decoder, key-only decoder) of a table map entry, cached on it."""
    found = getattr(table, "_drs_images", None)
    if found is None:
        refuse_unusable(table)
        columns = table.columns  # type: ignore[attr-defined]
        full = compile_image_decoder(columns, [True] * len(columns))
        key = [bool(getattr(c, "is_primary", False)) for c in columns]
        keyed = compile_image_decoder(columns, key) if any(key) else full
        found = (full, keyed)
        table._drs_images = found  # type: ignore[attr-defined]
    return found


def _bit_count(bitmap: bytes, ncols: int) -> list[bool]:
    return [bool(bitmap[i >> 3] & (1 << (i & 7))) for i in range(ncols)]


def decode_image(
    buf: bytes, off: int, decoders: list[Decoder], present: list[bool] | None
) -> tuple[tuple[str | None, ...], int]:
    """One row image: NULL bitmap over the present columns, then each present non-NULL value.

    `present` None means every column is in the image (binlog_row_image=FULL), the fast path.
    """
    values: list[str | None] = []
    append = values.append
    if present is None:
        nbytes = (len(decoders) + 7) >> 3
        nulls = buf[off : off + nbytes]
        off += nbytes
        if not any(nulls):
            for dec in decoders:
                lit, off = dec(buf, off)
                append(lit)
            return tuple(values), off
        for k, dec in enumerate(decoders):
            if nulls[k >> 3] & (1 << (k & 7)):
                append(NULL)
            else:
                lit, off = dec(buf, off)
                append(lit)
        return tuple(values), off
    nbytes = (sum(present) + 7) >> 3
    nulls = buf[off : off + nbytes]
    off += nbytes
    k = 0
    for i, dec in enumerate(decoders):
        if not present[i]:
            append(None)  # not in the image (binlog_row_image != FULL)
            continue
        if nulls[k >> 3] & (1 << (k & 7)):
            append(NULL)
        else:
            lit, off = dec(buf, off)
            append(lit)
        k += 1
    return tuple(values), off


_PRESENCE: dict[tuple[bytes, int], list[bool] | None] = {}


def _presence(bitmap: bytes, ncols: int) -> list[bool] | None:
    """Which columns an image carries; None when all of them (cached: there are few bitmaps)."""
    key = (bytes(bitmap), ncols)
    found = _PRESENCE.get(key, False)
    if found is False:
        present = _bit_count(bitmap, ncols)
        found = None if all(present) else present
        if len(_PRESENCE) < 4096:
            _PRESENCE[key] = found
    return found  # type: ignore[return-value]


def decode_rows(
    buf: bytes,
    off: int,
    end: int,
    decoders: list[Decoder],
    bitmap1: bytes,
    bitmap2: bytes | None,
    *,
    kind: str = "",
    images: tuple[ImageDecoder, ImageDecoder] | None = None,
) -> list:
    """Every row of a rows event body: tuples of literals, or (before, after) pairs for updates.

    With `images` (compiled decoders) and full row images, deletes and update before-images carry
    only their key columns (others None) when the table has a primary key.
    """
    ncols = len(decoders)
    present1 = _presence(bitmap1, ncols)
    present2 = _presence(bitmap2, ncols) if bitmap2 is not None else None
    if images is not None and present1 is None and present2 is None:
        return _decode_full_images(buf, off, end, images, bitmap2 is not None, kind)
    rows: list = []
    if bitmap2 is not None:
        while off < end:
            before, off = decode_image(buf, off, decoders, present1)
            after, off = decode_image(buf, off, decoders, present2)
            rows.append((before, after))
    else:
        while off < end:
            values, off = decode_image(buf, off, decoders, present1)
            rows.append(values)
    return rows


def _decode_full_images(
    buf: bytes, off: int, end: int, images: tuple[ImageDecoder, ImageDecoder], update: bool, kind: str
) -> list:
    full, keyed = images
    rows: list = []
    append = rows.append
    if update:
        while off < end:
            before, off = keyed(buf, off)
            after, off = full(buf, off)
            append((before, after))
    else:
        image = keyed if kind == "delete" else full
        while off < end:
            values, off = image(buf, off)
            append(values)
    return rows


def decode_table_rows(
    table: object, buf: bytes, off: int, end: int, bitmap1: bytes, bitmap2: bytes | None, kind: str
) -> list:
    """decode_rows() for a rows event of `table` (a table map entry), with its compiled decoders.

    What decode_rows needs of a table is looked up once per table map; a rows event whose column
    bitmaps are ones already seen to hold every column goes straight to the compiled decoders.
    """
    plan = getattr(table, "_drs_plan", None)
    if plan is None:
        plan = (table_decoders(table), table_image_decoders(table), set())
        table._drs_plan = plan  # type: ignore[attr-defined]
    decoders, images, full_bitmaps = plan
    if bitmap1 in full_bitmaps and (bitmap2 is None or bitmap2 in full_bitmaps):
        return _decode_full_images(buf, off, end, images, bitmap2 is not None, kind)
    for bitmap in (bitmap1, bitmap2):
        if bitmap is not None and len(full_bitmaps) < 8 and _presence(bitmap, len(decoders)) is None:
            full_bitmaps.add(bytes(bitmap))
    return decode_rows(buf, off, end, decoders, bitmap1, bitmap2, kind=kind, images=images)


def _fetch_rows(self: row_event.RowsEvent) -> None:
    """Replacement of RowsEvent._fetch_rows: rows as tuples of SQL literals (see module doc)."""
    if not self.complete:
        self._RowsEvent__rows = []
        return
    remaining = self.event_size - self.packet.read_bytes
    buf = bytes(self.packet.read(remaining))
    decoders = table_decoders(self.table_map[self.table_id])
    second = self.columns_present_bitmap2 if isinstance(self, row_event.UpdateRowsEvent) else None
    self._RowsEvent__rows = decode_rows(buf, 0, remaining, decoders, self.columns_present_bitmap, second)


# ---- table map metadata --------------------------------------------------------------------------
# A TABLE_MAP event gives each column's type; whether an integer is UNSIGNED, a string's character set
# and the column names are in its optional metadata, complete only with binlog_row_metadata=FULL
# (MySQL 8.0.1+, MariaDB 10.5+). Without it the library leaves every integer signed and every string
# without a character set: 18446744073709551615 would be replayed as -1. We never guess: a table
# whose map lacks any of it is marked, and decoding its rows fails with the reason.

_LIBRARY: dict[str, Callable] = {}  # the library's own methods we replace (tests use them as oracle)


def metadata_gaps(event: row_event.TableMapEvent) -> list[str]:
    """What the optional metadata of a TABLE_MAP event lacks for an exact decode (empty: nothing)."""
    meta = event.optional_metadata
    types = [c.type for c in event.columns]
    dbms = event.dbms
    gaps = []
    if not getattr(event, "_TableMapEvent__optional_meta_data", False) or not meta.column_name_list:
        gaps.append("column names")
    elif len(meta.column_name_list) != len(types):
        gaps.append(f"all column names ({len(meta.column_name_list)} for {len(types)} columns)")
    numeric = sum(1 for t in types if row_event.TableMapEvent._is_numeric_column(t))
    if numeric and len(meta.unsigned_column_list or []) != len(types):
        gaps.append("the signedness of its numeric columns")
    chars = sum(1 for t in types if row_event.TableMapEvent._is_character_column(t, dbms=dbms))
    if chars and len(meta.charset_collation_list or []) < chars:
        gaps.append("the character sets of its string columns")
    enums = sum(1 for t in types if t == FIELD_TYPE.ENUM)
    sets = sum(1 for t in types if t == FIELD_TYPE.SET)
    if (enums or sets) and (
        len(meta.enum_and_set_collation_list or []) < enums + sets
        or len(meta.set_enum_str_value_list or []) < enums
        or len(meta.set_str_value_list or []) < sets
    ):
        gaps.append("the values and character sets of its ENUM/SET columns")
    return gaps


def _sync_column_info(self: row_event.TableMapEvent) -> None:
    """Replacement of TableMapEvent._sync_column_info: the library's, for complete metadata only."""
    gaps = metadata_gaps(self)
    if not gaps:
        _LIBRARY["sync"](self)
        return
    # The library would guess (or fail on an index); the table is marked instead, and its rows
    # refused when they are decoded (tables the task does not protect are never decoded).
    self.table_obj._drs_refusal = (  # type: ignore[attr-defined]
        f"the binlog describes table `{self.schema}`.`{self.table}` without {' and '.join(gaps)}: "
        "binlog_row_metadata is not FULL on the service database (or was not when this change was "
        "written), and without it DRS Desktop would have to guess which integers are UNSIGNED and the "
        "character sets of strings (an UNSIGNED 18446744073709551615 would read as -1). Fix: SET GLOBAL binlog_row_metadata='FULL'; and binlog_row_metadata=FULL "
        "under [mysqld] in my.cnf (MySQL 8.0.1+/MariaDB 10.5+); changes written before that cannot be "
        "replayed: start the task again with a new initial copy"
    )


def refuse_unusable(table: object) -> None:
    """Raise the reason a table map cannot be decoded from, if any (see above)."""
    reason = getattr(table, "_drs_refusal", None)
    if reason:
        raise Unreplicable(reason)


def install() -> None:
    """Use our decoder for every rows event this process reads (idempotent)."""
    if "fetch_rows" not in _LIBRARY:
        _LIBRARY["fetch_rows"] = row_event.RowsEvent._fetch_rows
        _LIBRARY["sync"] = row_event.TableMapEvent._sync_column_info
    row_event.RowsEvent._fetch_rows = _fetch_rows  # type: ignore[method-assign]
    row_event.TableMapEvent._sync_column_info = _sync_column_info  # type: ignore[method-assign]
