-- Class 10: routines, triggers and events created while streaming under a session sql_mode other
-- than the default (rpl_sp, rpl_trigger, rpl_events, rpl_sp_effects): each keeps the sql_mode, the
-- character set and the collation of the session that created it, and runs under them forever.

CREATE TABLE t10 (id INT PRIMARY KEY, v VARCHAR(40), n INT);
SET timestamp = 1700000000;

SET sql_mode = '';
CREATE PROCEDURE p_empty(IN x INT) INSERT INTO t10 VALUES (x, 'truncated without strict mode, silently', 1);
CREATE FUNCTION f_empty(x INT) RETURNS INT DETERMINISTIC RETURN x DIV 0;
CREATE TRIGGER tr_empty BEFORE UPDATE ON t10 FOR EACH ROW SET NEW.n = NEW.n DIV 0;

SET sql_mode = 'ANSI,NO_BACKSLASH_ESCAPES';
CREATE PROCEDURE "p_ansi"() SELECT "v" || 'a\b' FROM t10;
CREATE FUNCTION f_ansi(s VARCHAR(10)) RETURNS VARCHAR(20) DETERMINISTIC RETURN s || 'x\y';
DELIMITER //
CREATE TRIGGER tr_ansi BEFORE INSERT ON t10 FOR EACH ROW
BEGIN
  SET NEW.v = NEW.v || '!' || 'c:\temp';
END//
DELIMITER ;

SET sql_mode = 'TRADITIONAL';
CREATE EVENT ev_trad ON SCHEDULE AT '2035-01-01 00:00:00' ON COMPLETION PRESERVE DISABLE DO INSERT INTO t10 VALUES (99, 'event', 0);
CREATE EVENT ev_enabled ON SCHEDULE EVERY 1 DAY DO DELETE FROM t10 WHERE id < 0;

SET sql_mode = 'ORACLE';
DELIMITER //
CREATE PROCEDURE p_ora(a IN NUMBER) AS
BEGIN
  INSERT INTO t10 VALUES (a, 'oracle', a);
END;
//
DELIMITER ;

SET sql_mode = 'EMPTY_STRING_IS_NULL,SIMULTANEOUS_ASSIGNMENT,TIME_ROUND_FRACTIONAL';
CREATE FUNCTION f_high() RETURNS VARCHAR(5) DETERMINISTIC RETURN '';
CREATE VIEW v_high AS SELECT id, '' AS empty FROM t10;

SET sql_mode = DEFAULT;
CREATE PROCEDURE p_default() SELECT 1;
CREATE EVENT ev_default ON SCHEDULE EVERY 1 HOUR STARTS '2035-01-01 00:00:00' DO DELETE FROM t10 WHERE id < 0;
-- the triggers fire on the service side; their effect arrives as rows
INSERT INTO t10 VALUES (1, 'a', 1);
SET timestamp = DEFAULT;
