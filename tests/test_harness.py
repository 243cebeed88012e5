"""The real-server harness itself: two MariaDB servers configured as a DR pair needs them."""

from engine.connect import binlog_position, connect, server_info, variables


def test_two_servers_ready_for_row_based_dr(dbs):
    infos = []
    for server in (dbs.source, dbs.target):
        conn = connect(server.endpoint)
        v = variables(conn, "log_bin", "binlog_format", "binlog_row_image", "binlog_row_metadata")
        assert v == {"log_bin": "ON", "binlog_format": "ROW", "binlog_row_image": "FULL", "binlog_row_metadata": "FULL"}
        infos.append(server_info(conn))
        assert binlog_position(conn).pos > 0
        conn.close()
    assert infos[0].is_mariadb and infos[1].is_mariadb
    assert infos[0].server_id != infos[1].server_id and 0 not in (infos[0].server_id, infos[1].server_id)


def test_reset_drops_user_databases(dbs):
    dbs.source.sql("CREATE DATABASE scratch", "CREATE TABLE scratch.t (id INT PRIMARY KEY)")
    dbs.reset()
    assert "scratch" not in dbs.source.user_databases()
