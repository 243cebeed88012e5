"""What a DR task is (frozen dataclasses) and the one set of rules every task must follow.

The wizard and the CLI both call these validators, so a rule lives here once and its message names
the field and what is allowed.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field, replace
from datetime import datetime, time
from typing import Any

from engine.errors import FieldError, SpecInvalid

RELATIONSHIPS = ("standby", "active")
NETWORKS = ("public", "vpn")
TLS_MODES = ("off", "required", "verify_ca")
ENGINES = ("mysql",)
MAX_TAGS = 20
MAX_WINDOWS = 3
DESCRIPTION_FORBIDDEN = "!=<>'&\"\\"
NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{3,49}\Z")  # \Z: `$` lets a trailing newline through
TAG_KEY_RE = re.compile(r"^[A-Za-z0-9_.:/=+@-]{1,128}\Z")
SYSTEM_DATABASES = frozenset({"mysql", "sys", "information_schema", "performance_schema"})
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")  # NUL, line breaks, tabs, escape: never in a one-line field

SPEC_KEYS = {
    "name", "description", "relationship", "network", "source", "target", "databases",
    "flow_control", "migrate_definer", "start", "tags",
}  # fmt: skip
OPTIONAL_SPEC_KEYS = {"description", "network", "databases", "flow_control", "migrate_definer", "start", "tags"}
CONNECTION_KEYS = {"host", "port", "user", "password", "password_env", "tls", "ca_file"}


class Secret:
    """A password that never shows itself in repr(), str(), logs or exception texts."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


@dataclass(frozen=True)
class Endpoint:
    """How to reach one database server (the service or the DR side)."""

    host: str
    port: int = 3306
    user: str = ""
    password: Secret = field(default_factory=lambda: Secret(""), repr=False, compare=False)
    tls: str = "off"
    ca_file: str | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def with_password(self, password: Secret | str) -> Endpoint:
        return replace(self, password=password if isinstance(password, Secret) else Secret(password))


@dataclass(frozen=True)
class TimeWindow:
    start: time
    end: time

    def contains(self, t: time) -> bool:
        return self.start <= t < self.end

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


@dataclass(frozen=True)
class FlowControl:
    max_mb_s: int
    windows: tuple[TimeWindow, ...] = ()  # empty: all day

    def limit_at(self, now: time) -> int | None:
        """Bytes per second allowed at this local time, None when unlimited."""
        if not self.windows or any(w.contains(now) for w in self.windows):
            return self.max_mb_s * 1024 * 1024
        return None


@dataclass(frozen=True)
class TaskSpec:
    name: str
    source: Endpoint
    target: Endpoint
    description: str = ""
    relationship: str = "standby"
    network: str = "public"
    source_engine: str = "mysql"
    target_engine: str = "mysql"
    databases: tuple[str, ...] | None = None  # None: every user database
    flow_control: FlowControl | None = None
    migrate_definer: bool = True
    start_at: datetime | None = None  # None: start upon creation
    tags: tuple[tuple[str, str], ...] = ()

    def to_public_dict(self) -> dict[str, Any]:
        """The spec as JSON-ready data, without passwords."""

        def ep(e: Endpoint) -> dict[str, Any]:
            return {"host": e.host, "port": e.port, "user": e.user, "tls": e.tls, "ca_file": e.ca_file}

        return {
            "name": self.name,
            "description": self.description,
            "relationship": self.relationship,
            "network": self.network,
            "source": ep(self.source),
            "target": ep(self.target),
            "databases": list(self.databases) if self.databases is not None else None,
            "flow_control": None
            if self.flow_control is None
            else {
                "max_mb_s": self.flow_control.max_mb_s,
                "windows": [
                    {"start": f"{w.start:%H:%M}", "end": f"{w.end:%H:%M}"} for w in self.flow_control.windows
                ],
            },
            "migrate_definer": self.migrate_definer,
            "start": "now" if self.start_at is None else self.start_at.isoformat(timespec="minutes"),
            "tags": dict(self.tags),
        }


def shown_value(value: Any) -> str:
    """A refused value as a message echoes it: its repr, cut short so the message stays readable."""
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:50]}... ({len(value) if isinstance(value, str) else len(text)} characters)"


def shown_path(path: str) -> str:
    """A file name as a message quotes it: as typed, unless it is absurdly long or has control characters."""
    if len(path) > 200:
        return f"{path[:200]!r}... ({len(path)} characters)"
    return repr(path) if not path or CONTROL_RE.search(path) else path


# ---- single-field validators: each returns None when fine, else what is allowed -------------------


def check_name(value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return "required; 4-50 characters, starting with a letter, only letters, digits, - and _"
    if not NAME_RE.match(value):
        return (
            "must start with a letter and have 4-50 characters, only letters, digits, - and _ "
            f"(got {len(value)} characters)"
            if not (4 <= len(value) <= 50)
            else "must start with a letter and contain only letters, digits, - and _"
        )
    return None


def check_description(value: Any) -> str | None:
    if not isinstance(value, str):
        return "must be text"
    if len(value) > 256:
        return f"at most 256 characters (got {len(value)})"
    if CONTROL_RE.search(value):
        return "must be one line of text: no line breaks, tabs or other control characters (such as NUL)"
    bad = sorted({c for c in value if c in DESCRIPTION_FORBIDDEN})
    if bad:
        return "must not contain any of ! = < > ' & \" \\ (found " + " ".join(bad) + ")"
    return None


def check_choice(value: Any, allowed: tuple[str, ...]) -> str | None:
    if value not in allowed:
        return f"must be one of {', '.join(allowed)} (got {shown_value(value)})"
    return None


def check_host(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return "required: an IP address or domain name"
    if len(value) > 253 or not re.match(r"^[A-Za-z0-9.:_\-\[\]%]+\Z", value):
        return "must be an IP address or domain name (letters, digits, '.', '-', ':' only, at most 253)"
    return None


def check_port(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int):
        # ASCII digits only: str.isdigit() also accepts "²", which int() then rejects with a traceback
        if isinstance(value, str) and re.fullmatch(r"[0-9]{1,6}", value.strip()):
            value = int(value)
        else:
            return "must be a whole number from 1 to 65535"
    if not 1 <= value <= 65535:
        return f"must be from 1 to 65535 (got {value})"
    return None


def check_user(value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return "required: the database account name"
    if len(value) > 80:
        return "at most 80 characters"
    if CONTROL_RE.search(value):
        return "must not contain line breaks, tabs or other control characters (such as NUL)"
    return None


def check_password(value: Any) -> str | None:
    if not isinstance(value, str) or value == "":
        return "required"
    if len(value) > 512:
        return "at most 512 characters"
    return None


def check_max_mb_s(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 9999:
        return f"must be a whole number of MB/s from 1 to 9999 (got {value!r})"
    return None


def parse_clock(value: Any) -> time | None:
    if not isinstance(value, str) or not re.fullmatch(r"[0-9]{2}:[0-9]{2}", value):
        return None
    h, m = int(value[:2]), int(value[3:])
    if h == 24 and m == 0:
        return time(23, 59, 59, 999999)
    if h > 23 or m > 59:
        return None
    return time(h, m)


def check_windows(windows: list[TimeWindow]) -> str | None:
    """At most three daily ranges, each start before end, none overlapping."""
    if len(windows) > MAX_WINDOWS:
        return f"at most {MAX_WINDOWS} time ranges (got {len(windows)})"
    for w in windows:
        if not w.start < w.end:
            return f"range {w}: start must be before end (ranges lie within one day)"
    ordered = sorted(windows, key=lambda w: w.start)
    for a, b in zip(ordered, ordered[1:], strict=False):
        if b.start < a.end:
            return f"ranges {a} and {b} overlap"
    return None


def check_start(value: datetime | None, now: datetime | None = None) -> str | None:
    if value is None:
        return None
    now = now or datetime.now()
    if value <= now:
        return f"must be in the future (got {value:%Y-%m-%d %H:%M}, now is {now:%Y-%m-%d %H:%M})"
    return None


def check_tags(tags: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """(field, message) pairs for the tag list."""
    errors = []
    if len(tags) > MAX_TAGS:
        errors.append(("tags", f"at most {MAX_TAGS} tags (got {len(tags)})"))
    seen: set[str] = set()
    for key, value in tags:
        # the field names the tag by its key; a key too long to be one is cut short there
        fname = f"tags.{key}" if isinstance(key, str) and len(key) <= 128 else f"tags.{shown_value(key)}"
        if not isinstance(key, str) or not TAG_KEY_RE.match(key):
            errors.append((fname, "key: 1-128 letters, digits or _ . : / = + - @"))
        elif key in seen:
            errors.append((fname, "keys must be unique"))
        seen.add(key) if isinstance(key, str) else None
        if not isinstance(value, str) or len(value) > 255:
            errors.append((fname, "value: text of at most 255 characters"))
        elif CONTROL_RE.search(value):
            errors.append((fname, "value: one line of text, without control characters (such as NUL)"))
    return errors


def check_databases(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(d, str) and d for d in value):
        return "must be a list of database names, or null for every user database"
    if not value:
        return "must name at least one database, or be null for every user database"
    system = [d for d in value if d.lower() in SYSTEM_DATABASES]
    if system:
        return f"system databases cannot be protected: {', '.join(system)}"
    too_long = [d for d in value if len(d) > 64]
    if too_long:
        return "database names have at most 64 characters"
    # What MySQL and MariaDB refuse in a database name, said here rather than by the server later:
    for d in value:
        if "\x00" in d:
            return f"database name {d!r} contains a NUL character, which no database name can have"
        if d.endswith(" "):
            return f"database name {d!r} ends with a space, which no database name can"
        if any(ord(c) > 0xFFFF for c in d):
            return f"database name {d!r} has a character beyond U+FFFF (such as an emoji), which no database name can have"
    seen: set[str] = set()
    for d in value:
        if d in seen:
            return f"database {d!r} is listed twice"
        seen.add(d)
    return None


def parse_flow_control(fc: Any) -> tuple[FlowControl | None, list[FieldError]]:
    """The spec file's "flow_control" value (null, or max_mb_s with daily windows) as a FlowControl, with
    every broken rule; also what `drs task modify --flow-control JSON` reads."""
    errors: list[FieldError] = []

    def add(fname: str, msg: str | None) -> None:
        if msg:
            errors.append(FieldError(fname, msg))

    flow = None
    if fc is not None:
        if not isinstance(fc, dict) or set(fc) - {"max_mb_s", "windows"}:
            add("flow_control", "must be null (off) or {\"max_mb_s\": 1-9999, \"windows\": [{\"start\": \"HH:MM\", \"end\": \"HH:MM\"}]}")
        else:
            msg = check_max_mb_s(fc.get("max_mb_s"))
            add("flow_control.max_mb_s", msg)
            windows: list[TimeWindow] = []
            raw_windows = fc.get("windows", [])
            if not isinstance(raw_windows, list):
                add("flow_control.windows", "must be a list of {\"start\": \"HH:MM\", \"end\": \"HH:MM\"}")
                raw_windows = []
            for i, w in enumerate(raw_windows):
                s = parse_clock(w.get("start")) if isinstance(w, dict) else None
                e = parse_clock(w.get("end")) if isinstance(w, dict) else None
                if s is None or e is None or (isinstance(w, dict) and set(w) - {"start", "end"}):
                    add(f"flow_control.windows[{i}]", "must be {\"start\": \"HH:MM\", \"end\": \"HH:MM\"} (00:00-24:00)")
                else:
                    windows.append(TimeWindow(s, e))
            add("flow_control.windows", check_windows(windows))
            if not msg:
                flow = FlowControl(fc["max_mb_s"], tuple(sorted(windows, key=lambda w: w.start)))
    return flow, errors


def check_flow_control(fc: FlowControl | None) -> list[FieldError]:
    """The rules of parse_flow_control for a FlowControl built elsewhere (the GUI's dialog)."""
    if fc is None:
        return []
    errors = []
    for fname, msg in (("flow_control.max_mb_s", check_max_mb_s(fc.max_mb_s)),
                       ("flow_control.windows", check_windows(list(fc.windows)))):  # fmt: skip
        if msg:
            errors.append(FieldError(fname, msg))
    return errors


# ---- whole spec ----------------------------------------------------------------------------------


def _parse_endpoint(
    raw: Any, side: str, errors: list[FieldError], env: dict[str, str], need_password: bool
) -> Endpoint | None:
    if not isinstance(raw, dict):
        errors.append(FieldError(side, "must be an object with host, port, user, password or password_env, tls"))
        return None
    for key in sorted(set(raw) - CONNECTION_KEYS, key=str):
        errors.append(FieldError(f"{side}.{key}", f"unknown key; allowed: {', '.join(sorted(CONNECTION_KEYS))}"))
    before = len(errors)
    host = raw.get("host")
    port = raw.get("port", 3306)
    user = raw.get("user")
    tls = raw.get("tls", "off")
    ca_file = raw.get("ca_file")
    for fname, msg in (
        ("host", check_host(host)),
        ("port", check_port(port)),
        ("user", check_user(user)),
        ("tls", check_choice(tls, TLS_MODES)),
    ):
        if msg:
            errors.append(FieldError(f"{side}.{fname}", msg))
    if tls == "verify_ca":
        if not isinstance(ca_file, str) or not ca_file:
            errors.append(FieldError(f"{side}.ca_file", "required when tls is verify_ca: path of the CA file"))
        elif not os.path.isfile(ca_file):
            errors.append(FieldError(f"{side}.ca_file", f"no such file: {shown_path(ca_file)}"))
    elif ca_file not in (None, ""):
        errors.append(FieldError(f"{side}.ca_file", "only allowed when tls is verify_ca"))
    password: str | None = None
    if "password" in raw and "password_env" in raw:
        errors.append(FieldError(f"{side}.password", "give either password or password_env, not both"))
    elif "password" in raw:
        password = raw["password"]
        msg = check_password(password)
        if msg:
            errors.append(FieldError(f"{side}.password", msg))
    elif "password_env" in raw:
        var = raw["password_env"]
        if not isinstance(var, str) or not var:
            errors.append(FieldError(f"{side}.password_env", "must name an environment variable"))
        elif not env.get(var):
            errors.append(FieldError(f"{side}.password_env", f"environment variable {var} is not set or empty"))
        else:
            password = env[var]
    elif need_password:
        errors.append(FieldError(f"{side}.password", "required: give password or password_env"))
    if len(errors) > before:
        return None
    return Endpoint(
        host=host.strip(),
        port=int(port),
        user=user,
        password=Secret(password or ""),
        tls=tls,
        ca_file=ca_file or None,
    )


def parse_spec(
    raw: Any, *, env: dict[str, str] | None = None, now: datetime | None = None, need_passwords: bool = True
) -> TaskSpec:
    """Validate a spec as read from JSON (the CLI's spec file, or the wizard's fields) into a TaskSpec.

    Raises SpecInvalid listing every broken rule.
    """
    env = dict(os.environ) if env is None else env
    errors: list[FieldError] = []
    if not isinstance(raw, dict):
        raise SpecInvalid([FieldError("(spec)", "must be a JSON object")])
    # Each unknown key is its own error whose field is that key, so a typo like "sorce" is named.
    for key in sorted(set(raw) - SPEC_KEYS, key=str):
        errors.append(FieldError(str(key), f"unknown key; allowed: {', '.join(sorted(SPEC_KEYS))}"))
    for key in sorted(SPEC_KEYS - OPTIONAL_SPEC_KEYS - set(raw)):
        errors.append(FieldError(key, "required"))

    def add(fname: str, msg: str | None) -> None:
        if msg:
            errors.append(FieldError(fname, msg))

    name = raw.get("name")
    if "name" in raw:
        add("name", check_name(name))
    description = raw.get("description", "")
    add("description", check_description(description))
    relationship = raw.get("relationship", "standby")
    add("relationship", check_choice(relationship, RELATIONSHIPS))
    network = raw.get("network", "public")
    add("network", check_choice(network, NETWORKS))
    source = target = None
    if "source" in raw:
        source = _parse_endpoint(raw["source"], "source", errors, env, need_passwords)
    if "target" in raw:
        target = _parse_endpoint(raw["target"], "target", errors, env, need_passwords)
    if source and target and (source.host, source.port) == (target.host, target.port):
        errors.append(FieldError("target", "the DR database must be a different server from the service database"))

    databases = raw.get("databases")
    add("databases", check_databases(databases))

    flow, flow_errors = parse_flow_control(raw.get("flow_control"))
    errors.extend(flow_errors)

    migrate_definer = raw.get("migrate_definer", True)
    if not isinstance(migrate_definer, bool):
        add("migrate_definer", "must be true or false")

    start_at = None
    start = raw.get("start", "now")
    if start != "now":
        try:
            start_at = datetime.fromisoformat(start) if isinstance(start, str) else None
        except ValueError:
            start_at = None
        if start_at is None:
            add("start", "must be \"now\" or a local date-time like 2026-12-01T02:00")
        else:
            if start_at.tzinfo is not None:
                start_at = start_at.astimezone().replace(tzinfo=None)
            add("start", check_start(start_at, now))

    tags_raw = raw.get("tags", {})
    tags: list[tuple[str, str]] = []
    if isinstance(tags_raw, dict):
        tags = list(tags_raw.items())
    elif isinstance(tags_raw, list) and all(isinstance(t, dict) and set(t) == {"key", "value"} for t in tags_raw):
        tags = [(t["key"], t["value"]) for t in tags_raw]
    else:
        add("tags", "must be an object of key: value pairs")
    for fname, msg in check_tags(tags):
        add(fname, msg)

    if errors:
        raise SpecInvalid(errors)
    assert source is not None and target is not None
    return TaskSpec(
        name=name,
        source=source,
        target=target,
        description=description,
        relationship=relationship,
        network=network,
        databases=tuple(databases) if databases is not None else None,
        flow_control=flow,
        migrate_definer=migrate_definer,
        start_at=start_at,
        tags=tuple(tags),
    )


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json.load silently keeps the last of two equal keys, which would drop a tag or a setting.
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise SpecInvalid([FieldError("--spec", f"key {key!r} appears twice in one object; keys must be unique")])
        seen[key] = value
    return seen


def load_spec_file(path: str, **kwargs: Any) -> TaskSpec:
    try:
        with open(path, encoding="utf-8") as fh:
            raw = json.load(fh, object_pairs_hook=_no_duplicate_keys)
    except FileNotFoundError:
        raise SpecInvalid([FieldError("--spec", f"no such file: {shown_path(path)}")]) from None
    except json.JSONDecodeError as exc:
        raise SpecInvalid([FieldError("--spec", f"not valid JSON: {exc.msg} at line {exc.lineno}")]) from None
    except UnicodeDecodeError:
        raise SpecInvalid([FieldError("--spec", f"{shown_path(path)} is not UTF-8 text (a JSON spec file is expected)")]) from None
    except OSError as exc:  # a directory, no permission, ...
        raise SpecInvalid([FieldError("--spec", f"cannot read {shown_path(path)}: {exc.strerror or exc}")]) from None
    except ValueError:  # a NUL character in the path: no file can have that name
        raise SpecInvalid([FieldError("--spec", f"no such file: {shown_path(path)} (a file name cannot contain NUL)")]) from None
    return parse_spec(raw, **kwargs)
