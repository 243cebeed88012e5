"""One definer rule for the initial copy and streaming: only the DEFINER clause of the statement's own
header is read and rewritten, never `DEFINER=` text in a body, a string or a comment (no server needed)."""

from __future__ import annotations

import pytest

from engine.ddl import ANSI_QUOTES, SessionContext, definer_clause, definer_of, rewrite_definer

NEW = "DEFINER=`drs`@`%`"


@pytest.mark.parametrize(
    ("header", "account"),
    [
        ("DEFINER=`root`@`localhost`", "root@localhost"),
        ("DEFINER = `root` @ `localhost`", "root@localhost"),
        ("DEFINER='root'@'localhost'", "root@localhost"),
        ('DEFINER="root"@"localhost"', "root@localhost"),
        ("DEFINER=root@localhost", "root@localhost"),
        ("DEFINER=root@127.0.0.1", "root@127.0.0.1"),
        ("DEFINER=app@db.example.com", "app@db.example.com"),
        ("DEFINER='app'@'10.0.%'", "app@10.0.%"),
        ("DEFINER=`we``ird@x`@`10.0.%`", "we`ird@x@10.0.%"),
        ("DEFINER='it''s'@'h'", "it's@h"),
        ("DEFINER=`app_role`", "app_role"),  # a MariaDB role has no host
        ("DEFINER=CURRENT_USER", ""),
        ("DEFINER=current_user()", ""),
        ("DEFINER = CURRENT_USER ( )", ""),
        ("DEFINER=CURRENT_ROLE", ""),
    ],
)
def test_header_definer_is_read_and_rewritten_in_every_form(header: str, account: str):
    statement = f"CREATE {header} PROCEDURE p() SELECT 1"
    assert definer_of(statement) == account
    assert rewrite_definer(statement, "drs@%") == f"CREATE {NEW} PROCEDURE p() SELECT 1"


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (
            "CREATE ALGORITHM=UNDEFINED DEFINER=`root`@`localhost` SQL SECURITY DEFINER VIEW `v` AS select 1",
            f"CREATE ALGORITHM=UNDEFINED {NEW} SQL SECURITY DEFINER VIEW `v` AS select 1",
        ),
        (
            "create or replace definer=root@localhost sql security invoker view v as select 1",
            f"create or replace {NEW} sql security invoker view v as select 1",
        ),
        (
            "CREATE DEFINER=`root`@`localhost` TRIGGER t1 BEFORE INSERT ON t FOR EACH ROW SET NEW.a = 1",
            f"CREATE {NEW} TRIGGER t1 BEFORE INSERT ON t FOR EACH ROW SET NEW.a = 1",
        ),
        (
            "CREATE DEFINER=`root`@`localhost` EVENT e ON SCHEDULE EVERY 1 DAY DO DELETE FROM t",
            f"CREATE {NEW} EVENT e ON SCHEDULE EVERY 1 DAY DO DELETE FROM t",
        ),
        (
            "CREATE DEFINER=`root`@`localhost` FUNCTION f() RETURNS int DETERMINISTIC RETURN 1",
            f"CREATE {NEW} FUNCTION f() RETURNS int DETERMINISTIC RETURN 1",
        ),
        (
            "CREATE OR REPLACE DEFINER=`root`@`localhost` AGGREGATE FUNCTION f(x INT) RETURNS INT BEGIN RETURN 1; END",
            f"CREATE OR REPLACE {NEW} AGGREGATE FUNCTION f(x INT) RETURNS INT BEGIN RETURN 1; END",
        ),
        (
            "CREATE DEFINER=`root`@`localhost` PACKAGE pk AS FUNCTION f RETURN INT; END",
            f"CREATE {NEW} PACKAGE pk AS FUNCTION f RETURN INT; END",
        ),
        (
            "ALTER ALGORITHM=MERGE DEFINER=`root`@`localhost` VIEW v AS select 2",
            f"ALTER ALGORITHM=MERGE {NEW} VIEW v AS select 2",
        ),
        ("ALTER DEFINER=root@localhost EVENT e ENABLE", f"ALTER {NEW} EVENT e ENABLE"),
        (
            # mysqldump style: the header in executable comments
            "/*!50001 CREATE ALGORITHM=UNDEFINED */ /*!50013 DEFINER=`root`@`localhost` SQL SECURITY DEFINER */"
            " /*!50001 VIEW `v` AS select 1 */",
            f"/*!50001 CREATE ALGORITHM=UNDEFINED */ /*!50013 {NEW} SQL SECURITY DEFINER */ /*!50001 VIEW `v` AS select 1 */",
        ),
        (
            "SET STATEMENT sql_mode='' FOR CREATE DEFINER=`root`@`%` TRIGGER t1 AFTER DELETE ON t FOR EACH ROW DO 1",
            f"SET STATEMENT sql_mode='' FOR CREATE {NEW} TRIGGER t1 AFTER DELETE ON t FOR EACH ROW DO 1",
        ),
        (
            "CREATE /* who */ DEFINER = 'root'@'localhost' /* runs as */ PROCEDURE p() SELECT 1",
            f"CREATE /* who */ {NEW} /* runs as */ PROCEDURE p() SELECT 1",
        ),
    ],
)
def test_every_statement_kind_gets_its_header_rewritten(before: str, after: str):
    assert rewrite_definer(before, "drs@%") == after


def test_ansi_quotes_context_reads_double_quoted_names_as_identifiers():
    ansi = SessionContext(sql_mode=ANSI_QUOTES)
    statement = 'CREATE DEFINER="we""ird"@"h" PROCEDURE "p"() SELECT "col" FROM "t"'
    assert definer_of(statement, ansi) == 'we"ird@h'
    assert rewrite_definer(statement, "drs@%", ansi) == f'CREATE {NEW} PROCEDURE "p"() SELECT "col" FROM "t"'


def test_body_text_that_says_definer_is_left_alone():
    in_string = "CREATE DEFINER=`u`@`h` PROCEDURE p() SELECT 'DEFINER=`x`@`y`', \"DEFINER=x@y\""
    assert rewrite_definer(in_string, "drs@%") == (
        f"CREATE {NEW} PROCEDURE p() SELECT 'DEFINER=`x`@`y`', \"DEFINER=x@y\""
    )
    in_comment = (
        "CREATE DEFINER=`u`@`h` PROCEDURE p()\nBEGIN\n  -- DEFINER=`x`@`y`\n  # DEFINER=x@y\n"
        "  /* DEFINER=CURRENT_USER */ SELECT 1;\nEND"
    )
    assert rewrite_definer(in_comment, "drs@%") == in_comment.replace("DEFINER=`u`@`h`", NEW, 1)
    # a procedure that creates a view through PREPARE: the nested CREATE's definer is the body's data
    nested = (
        "CREATE DEFINER=`u`@`h` PROCEDURE mkview()\nBEGIN\n"
        "  SET @s = 'CREATE DEFINER=`x`@`y` VIEW v AS SELECT 1';\n"
        "  PREPARE st FROM @s; EXECUTE st; DEALLOCATE PREPARE st;\n"
        "  SET @t = CONCAT('CREATE ALGORITHM=MERGE DEFINER=', CURRENT_USER(), ' VIEW w AS SELECT 2');\n"
        "END"
    )
    assert rewrite_definer(nested, "drs@%") == nested.replace("DEFINER=`u`@`h`", NEW, 1)
    assert definer_of(nested) == "u@h"


def test_statement_without_a_header_definer_is_unchanged():
    for statement in (
        "CREATE PROCEDURE p() SELECT 'DEFINER=`x`@`y`'",
        "CREATE VIEW v AS SELECT 1 AS `DEFINER`",
        "CREATE TABLE t (definer VARCHAR(10) DEFAULT 'DEFINER=a@b')",
        "ALTER TABLE t ADD COLUMN definer INT",
        "/* DEFINER=`x`@`y` */ CREATE PROCEDURE p() SELECT 1",
        "CREATE PROCEDURE p() BEGIN CREATE DEFINER=x@y VIEW v AS SELECT 1; END",
        "DROP PROCEDURE p",
        "",
    ):
        assert rewrite_definer(statement, "drs@%") == statement
        assert definer_of(statement) == ""


def test_definer_clause_quotes_user_and_host_at_the_last_at():
    assert definer_clause("drs@%") == "`drs`@`%`"
    assert definer_clause("a`b@c@10.%") == "`a``b@c`@`10.%`"
    assert definer_clause("app_role") == "`app_role`"
