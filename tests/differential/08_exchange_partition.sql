-- Class 8: ALTER TABLE ... EXCHANGE PARTITION and other partition DDL (parts/rpl_partition,
-- parts.partition_exchange_*): rows move between tables without row events.

CREATE TABLE p (id INT NOT NULL PRIMARY KEY, v VARCHAR(20)) PARTITION BY RANGE (id) (
  PARTITION p0 VALUES LESS THAN (100), PARTITION p1 VALUES LESS THAN (200), PARTITION pmax VALUES LESS THAN MAXVALUE);
CREATE TABLE x (id INT NOT NULL PRIMARY KEY, v VARCHAR(20));
INSERT INTO p VALUES (1, 'p0 row'), (2, 'p0 row 2'), (150, 'p1 row'), (500, 'pmax row');
INSERT INTO x VALUES (5, 'x row'), (6, 'x row 2'), (7, 'x row 3');
--@sync

ALTER TABLE p EXCHANGE PARTITION p0 WITH TABLE x;
UPDATE p SET v = 'after exchange' WHERE id = 5;
DELETE FROM p WHERE id = 6;
UPDATE x SET v = 'moved out' WHERE id = 1;
DELETE FROM x WHERE id = 2;
INSERT INTO x VALUES (50, 'x again');

ALTER TABLE p EXCHANGE PARTITION p0 WITH TABLE x;
INSERT INTO p VALUES (60, 'new p0');
UPDATE x SET v = 'back in x' WHERE id = 5;

ALTER TABLE p TRUNCATE PARTITION p1;
ALTER TABLE p REORGANIZE PARTITION pmax INTO (PARTITION p2 VALUES LESS THAN (1000), PARTITION pmax VALUES LESS THAN MAXVALUE);
INSERT INTO p VALUES (700, 'p2 row'), (5000, 'pmax row 2');
ALTER TABLE p DROP PARTITION p2;
-- 10.7+: a partition becomes a table of its own
ALTER TABLE p CONVERT PARTITION p0 TO TABLE conv;
UPDATE conv SET v = 'converted' WHERE id = 50;
