-- Table DDL under a session sql_mode / explicit_defaults_for_timestamp (rpl_sql_mode,
-- rpl_session_var): unlike SET STATEMENT, the setting is only in the Query event's status block.

SET sql_mode = 'ORACLE';
CREATE TABLE ora_s (id NUMBER(5) PRIMARY KEY, d DATE, s VARCHAR2(10));
SET sql_mode = DEFAULT;
INSERT INTO ora_s VALUES (1, '2024-01-02 03:04:05', 'a');

SET sql_mode = 'EMPTY_STRING_IS_NULL';
CREATE TABLE es (id INT PRIMARY KEY, v VARCHAR(5) DEFAULT '');
SET sql_mode = 'PIPES_AS_CONCAT';
CREATE TABLE pc (id INT PRIMARY KEY, a VARCHAR(5), g VARCHAR(12) AS (a || '-x') PERSISTENT);
SET sql_mode = 'NO_BACKSLASH_ESCAPES';
CREATE TABLE nbe (id INT PRIMARY KEY, v VARCHAR(10) DEFAULT 'a\b' COMMENT 'c:\new');
SET sql_mode = DEFAULT;
INSERT INTO es (id) VALUES (1);
INSERT INTO pc (id, a) VALUES (1, 'a');
INSERT INTO nbe (id) VALUES (1);

SET explicit_defaults_for_timestamp = 0;
CREATE TABLE edt (id INT PRIMARY KEY, ts TIMESTAMP, ts2 TIMESTAMP);
SET explicit_defaults_for_timestamp = DEFAULT;
SET timestamp = 1700000000;
INSERT INTO edt (id) VALUES (1);
SET timestamp = DEFAULT;

-- a DDL under auto_increment_increment/offset (the event carries them)
SET auto_increment_increment = 5, auto_increment_offset = 3;
CREATE TABLE aii (id INT AUTO_INCREMENT PRIMARY KEY, v INT);
INSERT INTO aii (v) VALUES (1), (2);
ALTER TABLE aii ADD COLUMN w INT;
SET auto_increment_increment = 1, auto_increment_offset = 1;
INSERT INTO aii (v) VALUES (3);
