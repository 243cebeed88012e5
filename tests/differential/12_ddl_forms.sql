-- Everyday DDL (rpl_ddl, rpl_create_if_not_exists, rpl_row_create_table, rpl_rename,
-- rpl_alter, rpl_truncate_*): column reorder, rename, CREATE ... LIKE / SELECT, RENAME, TRUNCATE,
-- AUTO_INCREMENT, views, a temporary table (not in a ROW binlog) feeding a real one.

CREATE TABLE t (id INT PRIMARY KEY, a INT, b VARCHAR(10), c DATE);
INSERT INTO t VALUES (1, 1, 'one', '2024-01-01'), (2, 2, 'two', NULL);
--@sync
ALTER TABLE t MODIFY COLUMN c DATE FIRST;
ALTER TABLE t MODIFY COLUMN a INT AFTER b;
ALTER TABLE t ADD COLUMN d INT DEFAULT 7 AFTER id, ADD INDEX (b);
INSERT INTO t (id, a, b) VALUES (3, 3, 'three');
UPDATE t SET a = a + 10;
ALTER TABLE t CHANGE b bee VARCHAR(20) NOT NULL DEFAULT '';
ALTER TABLE t DROP COLUMN d;
ALTER TABLE t RENAME COLUMN a TO ay;
ALTER TABLE t COMMENT 'commented', ALGORITHM=COPY;
CREATE TABLE t_copy LIKE t;
INSERT INTO t_copy SELECT * FROM t;
CREATE TABLE ctas (PRIMARY KEY (id)) AS SELECT id, bee, ay * 2 AS dbl FROM t;
CREATE TABLE ctas2 SELECT 1 AS one, 'x' AS ex;
CREATE TABLE IF NOT EXISTS ctas2 (z INT);
RENAME TABLE t TO t_old, t_copy TO t;
TRUNCATE TABLE t_old;
INSERT INTO t_old (id, bee) VALUES (9, 'after truncate');
CREATE OR REPLACE TABLE ctas2 (z INT);
DROP TABLE IF EXISTS ctas2, nonexistent;

CREATE TABLE ai (id INT AUTO_INCREMENT PRIMARY KEY, v INT);
INSERT INTO ai (v) VALUES (1), (2), (3);
--@sync
DELETE FROM ai WHERE id = 3;
ALTER TABLE ai AUTO_INCREMENT = 100;
INSERT INTO ai (v) VALUES (4);

CREATE INDEX ib ON t (bee);
DROP INDEX ib ON t;
CREATE VIEW vw AS SELECT id, bee FROM t WHERE id > 1;
CREATE OR REPLACE VIEW vw AS SELECT id FROM t WITH CHECK OPTION;

CREATE TEMPORARY TABLE tmp (x INT);
INSERT INTO tmp VALUES (1), (2);
INSERT INTO t_old (id, bee) SELECT x + 100, 'from tmp' FROM tmp;
DROP TEMPORARY TABLE tmp;
