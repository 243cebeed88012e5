-- Class 2: DDL wrapped in SET STATEMENT var=value FOR ... (main.set_statement, rpl_set_statement):
-- the setting is in the statement text only, and changes what the DDL does to existing rows.
-- (SET STATEMENT sql_mode does not change how the statement itself is parsed: modes like
-- ANSI_QUOTES or PIPES_AS_CONCAT have no effect there, only modes that act at execution.)

-- not strict: the ALTER truncates the existing value instead of failing
CREATE TABLE base (id INT PRIMARY KEY, v VARCHAR(10));
INSERT INTO base VALUES (1, 'abcdefghij'), (2, 'x');
SET STATEMENT sql_mode='' FOR ALTER TABLE base MODIFY v VARCHAR(3);
INSERT INTO base VALUES (3, 'abc');

-- not strict: a division by zero in a new stored column gives NULL instead of failing
SET STATEMENT sql_mode='' FOR ALTER TABLE base ADD COLUMN q INT AS (id DIV (id - 1)) PERSISTENT;

-- an existing 0 keeps its value only under NO_AUTO_VALUE_ON_ZERO (else it is renumbered)
CREATE TABLE z (id INT NOT NULL PRIMARY KEY, v VARCHAR(5));
INSERT INTO z VALUES (0, 'zero'), (5, 'five');
SET STATEMENT sql_mode='NO_AUTO_VALUE_ON_ZERO' FOR ALTER TABLE z MODIFY id INT NOT NULL AUTO_INCREMENT;
INSERT INTO z (v) VALUES ('next');

-- fractional seconds are rounded under TIME_ROUND_FRACTIONAL, truncated without it
CREATE TABLE tf (id INT PRIMARY KEY, d DATETIME(6), t TIME(3));
INSERT INTO tf VALUES (1, '2024-01-01 10:00:00.600000', '10:00:00.999'), (2, '2024-12-31 23:59:59.500000', '00:00:00.499');
SET STATEMENT sql_mode='TIME_ROUND_FRACTIONAL' FOR ALTER TABLE tf MODIFY d DATETIME(0), MODIFY t TIME(0);

-- other session variables
SET STATEMENT time_zone='+05:00' FOR CREATE TABLE tzd (id INT PRIMARY KEY, ts TIMESTAMP NOT NULL DEFAULT '2024-01-01 00:00:00');
INSERT INTO tzd (id) VALUES (1);
SET STATEMENT explicit_defaults_for_timestamp=0 FOR CREATE TABLE eds (id INT PRIMARY KEY, ts TIMESTAMP, ts2 TIMESTAMP);
SET timestamp = 1700000000;
INSERT INTO eds (id) VALUES (1);
SET timestamp = DEFAULT;
CREATE TABLE parent (id INT PRIMARY KEY);
CREATE TABLE child (id INT PRIMARY KEY, pid INT);
INSERT INTO child VALUES (1, 5);
SET STATEMENT foreign_key_checks=0 FOR ALTER TABLE child ADD CONSTRAINT fk_p FOREIGN KEY (pid) REFERENCES parent (id);
