"""The lifecycle rules the GUI and `drs` share, in TaskService: start, modify flow control (a copy under
way follows it), modify connection details (only to the same server; a running task takes them at its
next reconnect), record a creation failure, database sizes. Real servers, the real runner."""

from __future__ import annotations

import threading

import pytest

from engine.errors import ActionNotAllowed, SpecInvalid
from engine.runner import TaskRunner
from engine.spec import FlowControl, TimeWindow, parse_spec
from engine.status import ALLOWED, Action, Status, why_not
from engine.store import STORE_FILE, Checkpoint
from engine.tasks import IDENTITY_KEY, TaskService
from tests.conftest import REPL_PASSWORD, make_spec
from tests.dr_helpers import wait_for
from tests.tcp_proxy import TcpProxy

MB = 1024 * 1024


def add(svc: TaskService, servers, name: str, status: Status = Status.CONFIGURATION, **spec_overrides):
    svc.create(parse_spec(make_spec(servers, name, **spec_overrides)), status=Status.CONFIGURATION)
    if status is not Status.CONFIGURATION:
        svc.store.set_status(name, status)
    return svc.get(name)


def messages(svc: TaskService, name: str) -> list[str]:
    return [e.message for e in svc.store.logs(name)]


def field_names(exc: pytest.ExceptionInfo[SpecInvalid]) -> list[str]:
    return [e.field for e in exc.value.errors]


class RunnerThread:
    """A TaskRunner on a thread, as the GUI's worker runs it."""

    def __init__(self, svc: TaskService, name: str):
        self.runner = TaskRunner(svc, name)
        self.thread = threading.Thread(target=self.runner.run, name=f"test-runner-{name}", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.runner.stop()
        self.thread.join(60)
        assert not self.thread.is_alive()


# ---- start -------------------------------------------------------------------------------------


def test_start_moves_configuration_and_pending_start_to_starting_and_says_why_not_elsewhere(service, servers):
    add(service, servers, "start-dr")
    assert service.start("start-dr").status is Status.STARTING
    assert "started by user" in messages(service, "start-dr")
    with pytest.raises(ActionNotAllowed) as info:
        service.start("start-dr")
    assert str(info.value) == why_not(Action.START, Status.STARTING)
    add(service, servers, "later-dr", Status.PENDING_START)
    assert service.start("later-dr").status is Status.STARTING


# ---- flow control ------------------------------------------------------------------------------


def test_flow_control_can_change_until_the_initial_copy_is_done(service, servers):
    assert ALLOWED[Action.MODIFY_FLOW_CONTROL] == {
        Status.CONFIGURATION, Status.PENDING_START, Status.STARTING, Status.INITIALIZING
    }  # fmt: skip
    add(service, servers, "flow-dr", Status.INITIALIZING)
    record = service.modify_flow_control("flow-dr", FlowControl(20))
    assert record.spec.flow_control == FlowControl(20)
    assert "flow control modified: 20 MB/s all day" in messages(service, "flow-dr")
    assert service.modify_flow_control("flow-dr", None).spec.flow_control is None
    assert "flow control modified: off" in messages(service, "flow-dr")

    service.store.set_status("flow-dr", Status.REPLICATING)
    with pytest.raises(ActionNotAllowed) as refused:
        service.modify_flow_control("flow-dr", FlowControl(5))
    assert "Modify Flow Control is not available while the task is Disaster recovery in progress" in str(
        refused.value
    )
    assert "Configuration, Pending start, Starting, Initializing" in str(refused.value)


def test_flow_control_values_are_checked_naming_the_field(service, servers):
    from datetime import time

    add(service, servers, "badflow-dr")
    with pytest.raises(SpecInvalid) as info:
        service.modify_flow_control("badflow-dr", FlowControl(0))
    assert field_names(info) == ["flow_control.max_mb_s"]
    overlapping = FlowControl(5, (TimeWindow(time(8), time(12)), TimeWindow(time(11), time(13))))
    with pytest.raises(SpecInvalid) as info:
        service.modify_flow_control("badflow-dr", overlapping)
    assert field_names(info) == ["flow_control.windows"] and "overlap" in str(info.value)
    assert service.get("badflow-dr").spec.flow_control is None


def test_a_lowered_limit_slows_a_copy_already_under_way(dbs, service):
    """The throttle reads the task's flow control again while the copy runs: after Modify Flow Control
    the rest of the copy is booked at the new limit (asserted on the bytes the throttle accounted)."""
    dbs.source.sql(
        "CREATE DATABASE bulk",
        "CREATE TABLE bulk.t (id INT PRIMARY KEY, v VARCHAR(1000))",
        "INSERT INTO bulk.t SELECT seq, REPEAT('x', 1000) FROM bulk.seq_1_to_12000",
    )
    add(service, dbs, "slow-dr", Status.STARTING, databases=["bulk"],
        flow_control={"max_mb_s": 3, "windows": []})  # fmt: skip
    run = RunnerThread(service, "slow-dr")
    try:
        wait_for(lambda: run.runner.throttle is not None and run.runner.throttle.bytes_consumed > 0, 60, 0.02,
                 "the copy to start reading")  # fmt: skip
        service.modify_flow_control("slow-dr", FlowControl(1))
        wait_for(lambda: service.get("slow-dr").status is Status.REPLICATING, 120, 0.1, "the copy to finish")
    finally:
        run.stop()
    throttle = run.runner.throttle
    assert throttle.flow == FlowControl(1) and throttle.flow_changes == 1
    assert throttle.bytes_by_limit.get(3 * MB, 0) > 0  # before the change
    assert throttle.bytes_by_limit.get(1 * MB, 0) > 0  # after it: booked at 1 MB/s
    assert set(throttle.bytes_by_limit) == {3 * MB, 1 * MB}
    assert dbs.target.sql("SELECT COUNT(*) FROM bulk.t") == [(12000,)]


# ---- connection details ------------------------------------------------------------------------


def test_modify_connection_checks_the_values_and_the_status_naming_each_field(service, servers, tmp_path):
    add(service, servers, "conn-dr", Status.FAILED)
    cases = [
        ({"port": 70000}, "source", ["source.port"]),
        ({"port": "http"}, "source", ["source.port"]),
        ({"host": "bad host!"}, "target", ["target.host"]),
        ({"user": ""}, "target", ["target.user"]),
        ({"tls": "maybe"}, "source", ["source.tls"]),
        ({"tls": "verify_ca"}, "source", ["source.ca_file"]),
        ({"tls": "verify_ca", "ca_file": str(tmp_path / "none.pem")}, "source", ["source.ca_file"]),
        ({"ca_file": str(tmp_path)}, "source", ["source.ca_file"]),  # only with verify_ca
        ({"password": ""}, "target", ["target.password"]),
        ({}, "target", ["target"]),
        ({"port": 1}, "middle", ["side"]),
    ]
    for fields, side, expected in cases:
        with pytest.raises(SpecInvalid) as info:
            service.modify_connection("conn-dr", side, **fields)
        assert field_names(info) == expected, (fields, str(info.value))
    tgt = servers.target.endpoint
    with pytest.raises(SpecInvalid) as info:  # the service side cannot become the DR server
        service.modify_connection("conn-dr", "source", port=tgt.port)
    assert field_names(info) == ["source.host"] and "different server" in str(info.value)
    service.store.set_status("conn-dr", Status.CONFIGURATION)
    with pytest.raises(ActionNotAllowed) as refused:
        service.modify_connection("conn-dr", "target", password="New-pw-1")
    assert str(refused.value) == why_not(Action.MODIFY_CONNECTION, Status.CONFIGURATION)
    assert service.get("conn-dr").spec.source == parse_spec(make_spec(servers, "conn-dr")).source


def test_new_password_goes_to_the_secret_store_only(service, servers, home, memory_keyring):
    add(service, servers, "pw-dr", Status.REPLICATING)
    record = service.modify_connection("pw-dr", "target", password="Brand-New-Pw-3b1")
    assert service.secrets.get_password("pw-dr", "target").reveal() == "Brand-New-Pw-3b1"
    assert service.secrets.get_password("pw-dr", "source").reveal() == REPL_PASSWORD
    assert record.spec.target == service.get("pw-dr").spec.target  # nothing else changed
    assert "target connection details modified: password changed" in messages(service, "pw-dr")
    stored = b"".join(p.read_bytes() for p in home.glob(STORE_FILE + "*"))
    assert b"Brand-New-Pw-3b1" not in stored


def test_a_new_address_of_the_same_server_is_accepted_another_server_is_refused(dbs, service):
    add(service, dbs, "move-dr", Status.REPLICATING)
    src, tgt = dbs.source.endpoint, dbs.target.endpoint
    # the same service server, reached by another name: accepted, and its identity is recorded
    record = service.modify_connection("move-dr", "source", host="localhost")
    assert record.spec.source.host == "localhost" and record.spec.source.port == src.port
    assert record.extra[IDENTITY_KEY]["source"]["server_id"] == 101
    assert "source connection details modified: host 127.0.0.1 -> localhost" in messages(service, "move-dr")
    # the DR side pointed at the service server by another name: another server (server_id 101, not 202)
    with pytest.raises(SpecInvalid) as info:
        service.modify_connection(
            "move-dr", "target", port=src.port
        )  # 127.0.0.1, where the source is localhost
    assert field_names(info) == ["target.host"]
    assert "another server (server_id 101)" in str(info.value) and "(server_id 202)" in str(info.value)
    assert service.get("move-dr").spec.target.port == tgt.port
    # once recorded, the identity decides: the DR server's address for the service side is refused
    # even under a name that differs from the DR side's
    with pytest.raises(SpecInvalid) as info:
        service.modify_connection("move-dr", "source", host="localhost", port=tgt.port)
    assert field_names(info) == ["source.host"] and "another server (server_id 202)" in str(info.value)


def test_an_unanswering_old_address_needs_the_checkpoint_to_prove_the_server(dbs, service):
    from tests.conftest import free_port

    gone = free_port()  # nothing listens there: the old address of the service server
    add(service, dbs, "lost-dr", Status.FAILED,
        source={**make_spec(dbs, "x")["source"], "port": gone})  # fmt: skip
    # no identity recorded, the old address silent, no checkpoint: nothing shows it is the same server
    with pytest.raises(SpecInvalid) as info:
        service.modify_connection("lost-dr", "source", port=dbs.source.port)
    assert field_names(info) == ["source.host"] and "no checkpoint yet" in str(info.value)
    # a checkpoint in a binlog the new address does not have: not the task's service server
    service.store.save_checkpoint("lost-dr", Checkpoint("binlog.999999", 4, None))
    with pytest.raises(SpecInvalid) as info:
        service.modify_connection("lost-dr", "source", port=dbs.source.port)
    assert "no binlog binlog.999999" in str(info.value)
    # the binlog and position of the checkpoint are there: the stream can continue, accepted
    file, pos = dbs.source.sql("SHOW MASTER STATUS")[0][:2]
    service.store.save_checkpoint("lost-dr", Checkpoint(file, int(pos), None))
    record = service.modify_connection("lost-dr", "source", port=dbs.source.port)
    assert record.spec.source.port == dbs.source.port


def test_a_running_task_takes_the_new_address_at_its_next_reconnect(dbs, service):
    """The runner reads the task's settings at each (re)connect: after Modify Connection moves the service
    side to a proxy in front of the same server, a dropped stream comes back through the proxy."""
    dbs.source.sql("CREATE DATABASE shop", "CREATE TABLE shop.kv (id INT PRIMARY KEY, v VARCHAR(20))",
                   "INSERT INTO shop.kv VALUES (1, 'one')")  # fmt: skip
    add(service, dbs, "hop-dr", Status.STARTING, databases=["shop"])
    run = RunnerThread(service, "hop-dr")
    try:
        wait_for(lambda: service.get("hop-dr").status is Status.REPLICATING, 120, 0.1, "replicating")
        with TcpProxy(dbs.source.port) as proxy:
            service.modify_connection("hop-dr", "source", port=proxy.port)
            assert proxy.accepted >= 1  # the check reached the server through the proxy
            before = proxy.accepted
            for (thread_id,) in dbs.source.sql(
                "SELECT ID FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'"
            ):
                dbs.source.sql(f"KILL {thread_id}")
            dbs.source.sql("INSERT INTO shop.kv VALUES (2, 'two')")
            wait_for(
                lambda: dbs.target.sql("SELECT COUNT(*) FROM shop.kv") == [(2,)],
                60,
                0.1,
                "row 2 on the DR side",
            )
            assert proxy.accepted > before
            # the stream now depends on the proxy: cutting it is a lost connection for the runner
            lost = sum("connection lost" in m for m in messages(service, "hop-dr"))
            wait_for(lambda: proxy.drop_all() > 0 and sum("connection lost" in m for m in messages(service, "hop-dr")) > lost,
                     60, 0.2, "the runner to lose its stream through the proxy")  # fmt: skip
            dbs.source.sql("INSERT INTO shop.kv VALUES (3, 'three')")
            wait_for(
                lambda: dbs.target.sql("SELECT COUNT(*) FROM shop.kv") == [(3,)],
                60,
                0.1,
                "row 3 on the DR side",
            )
    finally:
        run.stop()


# ---- creation failures and database sizes --------------------------------------------------------


def test_a_creation_failure_is_kept_with_its_reason_and_no_password(service, servers, memory_keyring):
    spec = parse_spec(make_spec(servers, "failed-dr"))
    record = service.record_creation_failure(spec, "the DR server refused the connection")
    assert record.status is Status.CREATION_FAILED
    assert record.last_error == "the DR server refused the connection"
    assert "creation failed: the DR server refused the connection" in messages(service, "failed-dr")
    assert not [k for k in memory_keyring.items if k[1].startswith("failed-dr/")]


def test_database_sizes_are_read_by_the_engine(dbs, service):
    dbs.source.sql("CREATE DATABASE sized", "CREATE TABLE sized.t (id INT PRIMARY KEY, v TEXT)",
                   "INSERT INTO sized.t SELECT seq, REPEAT('y', 500) FROM sized.seq_1_to_2000",
                   "ANALYZE TABLE sized.t")  # fmt: skip
    dbs.source.sql("CREATE DATABASE empty_one")
    sizes = dict(service.database_sizes(dbs.source.endpoint))
    assert sizes["sized"] > 500_000 and sizes["empty_one"] == 0
    assert not {"mysql", "sys", "information_schema", "performance_schema"} & set(sizes)
