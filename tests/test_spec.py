"""Task settings rules (engine.spec): every rule the wizard and `drs task create` share.

Each broken rule must come back as a FieldError naming the field as in the spec file and saying what
is allowed; property tests compare the validators with independent oracles.
"""

from __future__ import annotations

import json
import string
from datetime import datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.errors import FieldError, SpecInvalid
from engine.spec import (
    Endpoint,
    FlowControl,
    Secret,
    TimeWindow,
    check_description,
    check_name,
    check_port,
    check_tags,
    check_windows,
    load_spec_file,
    parse_clock,
    parse_spec,
)

PASSWORD = "S3cret-Pw-9d1e"
NOW = datetime(2030, 6, 1, 12, 0)
FAST = settings(max_examples=60, deadline=None)

NAME_CHARS = string.ascii_letters + string.digits + "-_"
FORBIDDEN = "!=<>'&\"\\"


def base_spec(**overrides) -> dict:
    spec = {
        "name": "orders-dr",
        "description": "orders database, Frankfurt to Dublin",
        "relationship": "standby",
        "network": "public",
        "source": {
            "host": "db1.example.invalid",
            "port": 3306,
            "user": "drs",
            "password": PASSWORD,
            "tls": "off",
        },
        "target": {
            "host": "db2.example.invalid",
            "port": 3307,
            "user": "drs",
            "password": PASSWORD,
            "tls": "off",
        },
        "flow_control": None,
        "migrate_definer": True,
        "start": "now",
        "tags": {},
    }
    spec.update(overrides)
    return spec


def errors_of(raw, **kwargs) -> dict[str, str]:
    """field -> message of every broken rule (the spec must be invalid)."""
    with pytest.raises(SpecInvalid) as info:
        parse_spec(raw, now=NOW, env=kwargs.pop("env", {}), **kwargs)
    assert info.value.errors and all(isinstance(e, FieldError) for e in info.value.errors)
    return {e.field: e.message for e in info.value.errors}


def endpoint(**changes) -> dict:
    ep = {"host": "db1.example.invalid", "port": 3306, "user": "drs", "password": PASSWORD, "tls": "off"}
    ep.update(changes)
    return {k: v for k, v in ep.items() if v is not ...}


# ---- a whole spec --------------------------------------------------------------------------------


def test_every_setting_of_a_valid_spec_is_kept():
    raw = base_spec(
        relationship="active",
        network="vpn",
        databases=["orders", "billing"],
        flow_control={
            "max_mb_s": 50,
            "windows": [{"start": "22:00", "end": "24:00"}, {"start": "01:00", "end": "05:30"}],
        },
        migrate_definer=False,
        start="2030-06-02T02:00",
        tags={"env": "prod", "team": "dba"},
    )
    spec = parse_spec(raw, now=NOW, env={})
    assert spec.name == "orders-dr" and spec.relationship == "active" and spec.network == "vpn"
    assert spec.source == Endpoint("db1.example.invalid", 3306, "drs", tls="off")
    assert spec.source.password.reveal() == PASSWORD and spec.target.password.reveal() == PASSWORD
    assert spec.target.address == "db2.example.invalid:3307"
    assert spec.databases == ("orders", "billing")
    assert spec.flow_control == FlowControl(
        50, (TimeWindow(time(1), time(5, 30)), TimeWindow(time(22), time(23, 59, 59, 999999)))
    )
    assert spec.migrate_definer is False
    assert spec.start_at == datetime(2030, 6, 2, 2, 0)
    assert spec.tags == (("env", "prod"), ("team", "dba"))
    public = spec.to_public_dict()
    assert public["start"] == "2030-06-02T02:00" and public["tags"] == {"env": "prod", "team": "dba"}
    assert PASSWORD not in json.dumps(public)


def test_defaults_for_optional_settings():
    raw = base_spec()
    for key in ("description", "network", "flow_control", "migrate_definer", "start", "tags"):
        del raw[key]
    spec = parse_spec(raw, now=NOW, env={})
    assert (spec.description, spec.network, spec.flow_control, spec.migrate_definer) == (
        "",
        "public",
        None,
        True,
    )
    assert spec.start_at is None and spec.tags == () and spec.databases is None


def test_required_keys_are_named():
    errs = errors_of({})
    assert {"name", "relationship", "source", "target"} <= set(errs)
    assert all("required" in errs[k] for k in ("name", "relationship", "source", "target"))


def test_spec_must_be_an_object():
    assert "JSON object" in errors_of(["not", "an", "object"])["(spec)"]


def test_unknown_keys_are_rejected_and_named():
    errs = errors_of(base_spec(colour="blue", sorce={}))
    assert set(errs) == {"colour", "sorce"}
    assert "unknown key" in errs["colour"] and "allowed" in errs["colour"] and "source" in errs["colour"]
    errs = errors_of(base_spec(source=endpoint(pasword="x")))
    assert "unknown key" in errs["source.pasword"] and "password_env" in errs["source.pasword"]


def test_every_broken_rule_is_listed_at_once():
    errs = errors_of(
        base_spec(
            name="1x",
            description="a<b",
            relationship="primary",
            network="lan",
            source=endpoint(port=0),
            target=endpoint(host="db2.example.invalid", tls="maybe"),
            migrate_definer="yes",
            start="tomorrow",
        )
    )
    assert set(errs) == {
        "name", "description", "relationship", "network", "source.port", "target.tls", "migrate_definer", "start",
    }  # fmt: skip
    assert "standby, active" in errs["relationship"] and "public, vpn" in errs["network"]
    assert "off, required, verify_ca" in errs["target.tls"]
    assert "true or false" in errs["migrate_definer"]


def test_service_and_dr_must_be_different_servers():
    errs = errors_of(base_spec(target=endpoint()))
    assert "different server" in errs["target"]


# ---- name ----------------------------------------------------------------------------------------


def name_ok(s: str) -> bool:
    """The rule in a DBA's words, independent of the regex in engine.spec."""
    return 4 <= len(s) <= 50 and s[0] in string.ascii_letters and all(c in NAME_CHARS for c in s)


@FAST
@given(st.from_regex(r"[A-Za-z][A-Za-z0-9_-]{3,49}", fullmatch=True))
def test_every_name_following_the_rule_is_accepted(name):
    assert check_name(name) is None
    assert parse_spec(base_spec(name=name), now=NOW, env={}).name == name


@FAST
@given(
    st.one_of(
        st.text(max_size=60),
        st.text(alphabet=NAME_CHARS + "é .\n", min_size=1, max_size=60),
        st.from_regex(r"[A-Za-z][A-Za-z0-9_-]{3,49}", fullmatch=True).map(lambda s: s + "\n"),
    ).filter(lambda s: not name_ok(s))
)
def test_every_other_name_is_rejected_naming_the_rule(name):
    msg = check_name(name)
    assert msg is not None
    assert "letter" in msg and "digits, - and _" in msg
    errs = errors_of(base_spec(name=name))
    assert errs["name"] == msg


@pytest.mark.parametrize("name", ["abc", "a" * 51, "9lives", "-dash", "orders dr", "orders.dr", "ordérs", ""])
def test_names_a_dba_might_try(name):
    assert check_name(name) is not None


def test_name_length_limits_are_inclusive():
    assert check_name("abcd") is None and check_name("a" * 50) is None
    assert "4-50 characters" in check_name("a" * 51)
    assert check_name(None) is not None and check_name(1234) is not None


# ---- description ---------------------------------------------------------------------------------


@FAST
@given(st.text(alphabet=st.sampled_from(string.ascii_letters + " ,.;-_()éü" + FORBIDDEN), max_size=300))
def test_description_rule_matches_length_and_forbidden_characters(text):
    msg = check_description(text)
    if len(text) <= 256 and not any(c in FORBIDDEN for c in text):
        assert msg is None
        assert parse_spec(base_spec(description=text), now=NOW, env={}).description == text
    else:
        assert msg is not None
        assert ("256" in msg) if len(text) > 256 else all(c in msg for c in FORBIDDEN)
        assert errors_of(base_spec(description=text))["description"] == msg


def test_description_limits():
    assert check_description("x" * 256) is None
    assert "at most 256" in check_description("x" * 257)
    for c in FORBIDDEN:
        assert f"found {c}" in check_description(f"before{c}after")
    assert check_description(None) == "must be text"


# ---- endpoints -----------------------------------------------------------------------------------


@FAST
@given(st.integers(min_value=-100_000, max_value=200_000))
def test_port_accepted_iff_from_1_to_65535(port):
    msg = check_port(port)
    if 1 <= port <= 65535:
        assert msg is None
        assert parse_spec(base_spec(source=endpoint(port=port)), now=NOW, env={}).source.port == port
    else:
        assert "1 to 65535" in msg
        assert "1 to 65535" in errors_of(base_spec(source=endpoint(port=port)))["source.port"]


@pytest.mark.parametrize("port", [True, 3306.5, "abc", "²", "", None, [3306]])
def test_port_must_be_a_whole_number(port):
    assert "whole number from 1 to 65535" in check_port(port)
    assert "source.port" in errors_of(base_spec(source=endpoint(port=port)))


def test_port_as_digits_text_is_taken_as_number():
    assert (
        parse_spec(
            base_spec(target=endpoint(host="db2.example.invalid", port="3310")), now=NOW, env={}
        ).target.port
        == 3310
    )


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"host": ""}, "source.host", "IP address or domain name"),
        ({"host": ...}, "source.host", "required"),
        ({"host": "db 1; drop"}, "source.host", "IP address or domain name"),
        ({"host": "db1\n"}, "source.host", "IP address or domain name"),
        ({"user": ""}, "source.user", "account name"),
        ({"user": "u" * 81}, "source.user", "at most 80"),
        ({"tls": "yes"}, "source.tls", "off, required, verify_ca"),
        ({"tls": "verify_ca"}, "source.ca_file", "required when tls is verify_ca"),
        ({"tls": "verify_ca", "ca_file": "/nonexistent/ca.pem"}, "source.ca_file", "no such file"),
        (
            {"tls": "required", "ca_file": "/etc/hostname"},
            "source.ca_file",
            "only allowed when tls is verify_ca",
        ),
        ({"password": ""}, "source.password", "required"),
        ({"password": ...}, "source.password", "password or password_env"),
        ({"password": "x" * 513}, "source.password", "at most 512"),
        ({"password_env": "DRS_PW"}, "source.password", "not both"),
    ],
)
def test_connection_rules_name_the_field(changes, field, words):
    errs = errors_of(base_spec(source=endpoint(**changes)))
    assert words in errs[field]


def test_endpoint_must_be_an_object():
    assert "host, port, user" in errors_of(base_spec(source="db1:3306"))["source"]


def test_tls_modes_and_ca_file(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    spec = parse_spec(base_spec(source=endpoint(tls="verify_ca", ca_file=str(ca)), target=endpoint(
        host="db2.example.invalid", tls="required")), now=NOW, env={})  # fmt: skip
    assert (spec.source.tls, spec.source.ca_file) == ("verify_ca", str(ca))
    assert (spec.target.tls, spec.target.ca_file) == ("required", None)


def test_password_from_environment_variable_is_read_at_parse_time():
    raw = base_spec(source=endpoint(password=..., password_env="DRS_SRC_PW"))
    spec = parse_spec(raw, now=NOW, env={"DRS_SRC_PW": "from-env-Pw-1"})
    assert spec.source.password.reveal() == "from-env-Pw-1"
    errs = errors_of(raw, env={})
    assert set(errs) == {"source.password_env"} and "DRS_SRC_PW" in errs["source.password_env"]
    assert "environment variable" in errors_of(raw, env={"DRS_SRC_PW": ""})["source.password_env"]
    bad = base_spec(source=endpoint(password=..., password_env=""))
    assert "environment variable" in errors_of(bad)["source.password_env"]


def test_passwords_optional_when_not_needed():
    raw = base_spec(source=endpoint(password=...), target=endpoint(host="db2.example.invalid", password=...))
    spec = parse_spec(raw, now=NOW, env={}, need_passwords=False)
    assert not spec.source.password and not spec.target.password


# ---- flow control --------------------------------------------------------------------------------


def test_flow_control_off_and_limits():
    assert parse_spec(base_spec(flow_control=None), now=NOW, env={}).flow_control is None
    all_day = parse_spec(base_spec(flow_control={"max_mb_s": 9999}), now=NOW, env={}).flow_control
    assert all_day == FlowControl(9999, ())
    assert all_day.limit_at(time(3, 0)) == 9999 * 1024 * 1024
    for bad in (0, 10000, -1, 1.5, True, "10", None):
        errs = errors_of(base_spec(flow_control={"max_mb_s": bad}))
        assert "1 to 9999" in errs["flow_control.max_mb_s"]


def test_flow_control_windows_limit_only_inside_them():
    fc = parse_spec(base_spec(flow_control={"max_mb_s": 5, "windows": [{"start": "08:00", "end": "18:00"}]}),
                    now=NOW, env={}).flow_control  # fmt: skip
    assert fc.limit_at(time(8, 0)) == 5 * 1024 * 1024 and fc.limit_at(time(17, 59)) == 5 * 1024 * 1024
    assert fc.limit_at(time(18, 0)) is None and fc.limit_at(time(7, 59)) is None


@pytest.mark.parametrize(
    ("flow", "field", "words"),
    [
        (
            {"max_mb_s": 5, "windows": [{"start": "25:00", "end": "26:00"}]},
            "flow_control.windows[0]",
            "HH:MM",
        ),
        ({"max_mb_s": 5, "windows": [{"start": "8:00", "end": "09:00"}]}, "flow_control.windows[0]", "HH:MM"),
        (
            {"max_mb_s": 5, "windows": [{"start": "08:00", "end": "09:00", "x": 1}]},
            "flow_control.windows[0]",
            "HH:MM",
        ),
        ({"max_mb_s": 5, "windows": ["08:00-09:00"]}, "flow_control.windows[0]", "HH:MM"),
        (
            {"max_mb_s": 5, "windows": [{"start": "09:00", "end": "08:00"}]},
            "flow_control.windows",
            "start must be before end",
        ),
        ({"max_mb_s": 5, "windows": "all day"}, "flow_control.windows", "must be a list"),
        ({"max_mb_s": 5, "burst": 10}, "flow_control", "max_mb_s"),
        ("fast", "flow_control", "null (off)"),
    ],
)
def test_flow_control_rules_name_the_field(flow, field, words):
    assert words in errors_of(base_spec(flow_control=flow))[field]


def test_clock_parsing():
    assert parse_clock("00:00") == time(0) and parse_clock("23:59") == time(23, 59)
    assert parse_clock("24:00") == time(23, 59, 59, 999999)
    for bad in ("24:01", "12:60", "1200", "12:00\n", "١٢:٠٠", None, 1200):
        assert parse_clock(bad) is None


def hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


windows_strategy = st.lists(
    st.tuples(st.integers(0, 1439), st.integers(1, 1440)).filter(lambda w: w[0] < w[1]), max_size=3
)


@settings(max_examples=150, deadline=None)
@given(windows_strategy)
def test_windows_overlap_iff_their_minutes_overlap(windows):
    minutes = [set(range(a, b)) for a, b in windows]
    overlap = any(minutes[i] & minutes[j] for i in range(len(minutes)) for j in range(i + 1, len(minutes)))
    raw = base_spec(
        flow_control={"max_mb_s": 10, "windows": [{"start": hhmm(a), "end": hhmm(b)} for a, b in windows]}
    )
    if overlap:
        assert "overlap" in errors_of(raw)["flow_control.windows"]
    else:
        fc = parse_spec(raw, now=NOW, env={}).flow_control
        assert len(fc.windows) == len(windows)
        # the parsed windows limit exactly the minutes the DBA listed
        limited = {m for m in range(1440) if fc.limit_at(time(m // 60, m % 60)) is not None}
        assert limited == (set().union(*minutes) if windows else set(range(1440)))


@FAST
@given(
    st.lists(
        st.tuples(st.integers(0, 1439), st.integers(1, 1440)).filter(lambda w: w[0] < w[1]),
        min_size=4,
        max_size=6,
    )
)
def test_at_most_three_windows(windows):
    tw = [TimeWindow(parse_clock(hhmm(a)), parse_clock(hhmm(b))) for a, b in windows]
    assert f"at most 3 time ranges (got {len(windows)})" == check_windows(tw)


# ---- start, databases, tags ------------------------------------------------------------------


def test_start_now_or_a_future_local_time():
    assert parse_spec(base_spec(start="now"), now=NOW, env={}).start_at is None
    later = parse_spec(base_spec(start="2030-06-01T12:01"), now=NOW, env={}).start_at
    assert later == datetime(2030, 6, 1, 12, 1)
    assert "must be in the future" in errors_of(base_spec(start="2030-06-01T12:00"))["start"]
    assert "must be in the future" in errors_of(base_spec(start="2001-01-01T00:00"))["start"]
    for bad in ("tomorrow", "", None, 20300601, "2030-13-01T00:00"):
        assert '"now" or a local date-time' in errors_of(base_spec(start=bad))["start"]


def test_start_with_offset_is_converted_to_local_time():
    future = (datetime.now().astimezone() + timedelta(days=2)).replace(microsecond=0)
    spec = parse_spec(base_spec(start=future.isoformat()), env={})
    assert spec.start_at == future.astimezone().replace(tzinfo=None)


def test_databases_optional_list_without_system_databases():
    assert parse_spec(base_spec(databases=None), now=NOW, env={}).databases is None
    assert parse_spec(base_spec(databases=["shop"]), now=NOW, env={}).databases == ("shop",)
    for system in ("mysql", "sys", "information_schema", "Performance_Schema"):
        assert "system databases" in errors_of(base_spec(databases=["shop", system]))["databases"]
    assert "at least one" in errors_of(base_spec(databases=[]))["databases"]
    assert "list of database names" in errors_of(base_spec(databases="shop"))["databases"]
    assert "list of database names" in errors_of(base_spec(databases=["shop", ""]))["databases"]
    assert "64 characters" in errors_of(base_spec(databases=["d" * 65]))["databases"]


@FAST
@given(st.integers(0, 30))
def test_at_most_twenty_tags(count):
    tags = {f"key{i}": f"value{i}" for i in range(count)}
    if count <= 20:
        assert parse_spec(base_spec(tags=tags), now=NOW, env={}).tags == tuple(tags.items())
    else:
        assert f"at most 20 tags (got {count})" == errors_of(base_spec(tags=tags))["tags"]


def test_tag_keys_unique_and_well_formed():
    listed = [{"key": "env", "value": "prod"}, {"key": "env", "value": "test"}]
    assert "unique" in errors_of(base_spec(tags=listed))["tags.env"]
    ok = parse_spec(base_spec(tags=[{"key": "env", "value": "prod"}]), now=NOW, env={})
    assert ok.tags == (("env", "prod"),)
    assert "key: 1-128" in errors_of(base_spec(tags={"bad key": "x"}))["tags.bad key"]
    assert "key: 1-128" in errors_of(base_spec(tags={"env\n": "x"}))["tags.env\n"]
    assert "at most 255" in errors_of(base_spec(tags={"env": "v" * 256}))["tags.env"]
    assert "at most 255" in errors_of(base_spec(tags={"env": 5}))["tags.env"]
    assert "key: value" in errors_of(base_spec(tags="env=prod"))["tags"]
    assert check_tags([("a", "b"), ("c", "d")]) == []


# ---- passwords never show ------------------------------------------------------------------------


@FAST
@given(st.text(max_size=600).map(lambda p: "Pw#" + p))  # the prefix keeps it from matching e.g. a host name
def test_password_never_in_repr_or_str(password):
    secret = Secret(password)
    assert password not in repr(secret) and password not in str(secret) and secret.reveal() == password
    ep = Endpoint("db1.example.invalid", 3306, "drs", secret)
    assert password not in repr(ep) and password not in str(ep)
    raw = base_spec(
        source=endpoint(password=password), target=endpoint(host="db2.example.invalid", password=password)
    )
    try:
        spec = parse_spec(raw, now=NOW, env={})
    except SpecInvalid as exc:  # e.g. a password longer than 512 characters
        assert password not in str(exc) and password not in repr(exc) and password not in repr(exc.errors)
    else:
        assert password not in repr(spec) and password not in str(spec)
        assert password not in json.dumps(spec.to_public_dict())
    # a spec broken elsewhere must not echo the password either
    broken = dict(raw, name="1", description="<", source=dict(raw["source"], port=0, tls="x"))
    with pytest.raises(SpecInvalid) as info:
        parse_spec(broken, now=NOW, env={})
    assert password not in str(info.value) and password not in repr(info.value)


def test_secret_equality_and_truth():
    assert Secret("a") == Secret("a") and Secret("a") != Secret("b") and Secret("a") != "a"
    assert not Secret("") and Secret("x")
    # an endpoint compares by where it points, not by its password
    assert Endpoint("h", 1, "u", Secret("a")) == Endpoint("h", 1, "u", Secret("b"))


# ---- spec files ----------------------------------------------------------------------------------


def test_spec_file_round_trip(tmp_path):
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(base_spec()), encoding="utf-8")
    assert load_spec_file(str(path), now=NOW, env={}).name == "orders-dr"


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (None, "no such file"),
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe\x00garbage", "not UTF-8"),
        (b'{"name": "orders-dr", "name": "billing-dr"}', "appears twice"),
        (b'{"tags": {"env": "prod", "env": "test"}}', "appears twice"),
    ],
)
def test_bad_spec_files_are_named(tmp_path, content, words):
    path = tmp_path / "spec.json"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(SpecInvalid) as info:
        load_spec_file(str(path), now=NOW, env={})
    assert [e.field for e in info.value.errors] == ["--spec"] and words in info.value.errors[0].message


def test_spec_path_that_is_a_directory(tmp_path):
    with pytest.raises(SpecInvalid) as info:
        load_spec_file(str(tmp_path))
    assert info.value.errors[0].field == "--spec" and "cannot read" in info.value.errors[0].message
