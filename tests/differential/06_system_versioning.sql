-- Class 6: system-versioned tables (suite versioning/rpl): every row version, current and history,
-- with its ROW_START/ROW_END. Session clocks are pinned so history times are reproducible.

SET timestamp = 1700000000;
CREATE TABLE v (id INT PRIMARY KEY, val VARCHAR(10)) WITH SYSTEM VERSIONING;
INSERT INTO v VALUES (1, 'one'), (2, 'two'), (3, 'three');
--@sync
SET timestamp = 1700000100;
UPDATE v SET val = 'uno' WHERE id = 1;
--@sync
SET timestamp = 1700000200;
DELETE FROM v WHERE id = 2;
SET timestamp = 1700000300;
UPDATE v SET val = 'drei' WHERE id = 3;

-- explicit period columns
SET timestamp = 1700000400;
CREATE TABLE ve (id INT PRIMARY KEY, val INT, rs TIMESTAMP(6) GENERATED ALWAYS AS ROW START, re TIMESTAMP(6) GENERATED ALWAYS AS ROW END, PERIOD FOR SYSTEM_TIME(rs, re)) WITH SYSTEM VERSIONING;
INSERT INTO ve (id, val) VALUES (1, 10), (2, 20);
--@sync
SET timestamp = 1700000500.25;
UPDATE ve SET val = val + 1;

-- versioning added to a table with rows: their row start is the ALTER's time
CREATE TABLE later (id INT PRIMARY KEY, v INT);
INSERT INTO later VALUES (1, 1), (2, 2);
SET timestamp = 1700000600;
ALTER TABLE later ADD SYSTEM VERSIONING;
SET timestamp = 1700000700;
UPDATE later SET v = 20 WHERE id = 2;

-- no primary key
SET timestamp = 1700000800;
CREATE TABLE vheap (v INT) WITH SYSTEM VERSIONING;
INSERT INTO vheap VALUES (1), (1), (2);
--@sync
SET timestamp = 1700000900;
DELETE FROM vheap WHERE v = 1 LIMIT 1;

-- history pruned: only history rows go
SET timestamp = 1700001000;
SET time_zone = '+00:00';
DELETE HISTORY FROM v BEFORE SYSTEM_TIME '2023-11-14 22:16:00';
SET timestamp = DEFAULT;
