-- Multi-table UPDATE/DELETE, REPLACE, INSERT ... ON DUPLICATE KEY UPDATE, INSERT ... SELECT,
-- savepoints, and a non-transactional table in a rolled-back transaction (rpl_multi_update*,
-- rpl_multi_delete*, rpl_replace, rpl_insert_duplicate, rpl_savepoint, rpl_mixed_engines).

CREATE TABLE a (id INT PRIMARY KEY, v INT, note VARCHAR(20));
CREATE TABLE b (id INT PRIMARY KEY, a_id INT, w INT, KEY (a_id));
INSERT INTO a VALUES (1, 10, 'x'), (2, 20, 'y'), (3, 30, 'z');
INSERT INTO b VALUES (1, 1, 100), (2, 1, 200), (3, 2, 300), (4, 9, 400);
--@sync
UPDATE a JOIN b ON b.a_id = a.id SET a.v = a.v + b.w, b.w = b.w + 1 WHERE b.w < 300;
DELETE a, b FROM a JOIN b ON b.a_id = a.id WHERE a.id = 2;
DELETE b FROM b LEFT JOIN a ON a.id = b.a_id WHERE a.id IS NULL;
--@sync
REPLACE INTO a VALUES (1, -1, 'replaced'), (4, 40, 'new');
INSERT INTO a VALUES (3, 0, 'dup') ON DUPLICATE KEY UPDATE v = v + VALUES(v) + 1, note = CONCAT(note, '+');
INSERT INTO a (id, v) SELECT id + 100, w FROM b;
INSERT IGNORE INTO a VALUES (1, 0, 'ignored'), (5, 50, 'five');
UPDATE a SET v = v * 2 ORDER BY id DESC LIMIT 2;
UPDATE a SET id = id + 1000 WHERE id < 100 ORDER BY id DESC;

-- two unique keys: one REPLACE removes two rows
CREATE TABLE u2 (id INT PRIMARY KEY, email VARCHAR(20) NOT NULL UNIQUE, n INT);
INSERT INTO u2 VALUES (1, 'a@x', 1), (2, 'b@x', 2);
--@sync
REPLACE INTO u2 VALUES (1, 'b@x', 3);
INSERT INTO u2 VALUES (3, 'b@x', 0) ON DUPLICATE KEY UPDATE n = n + 100;

-- savepoints; a rolled-back transaction
BEGIN;
INSERT INTO a VALUES (10, 1, 's');
SAVEPOINT s1;
INSERT INTO a VALUES (11, 1, 's');
ROLLBACK TO SAVEPOINT s1;
UPDATE b SET w = 0;
COMMIT;
BEGIN;
DELETE FROM a;
ROLLBACK;

-- keyless table with duplicate rows
CREATE TABLE heap (v INT, w VARCHAR(5));
INSERT INTO heap VALUES (1, 'a'), (1, 'a'), (2, 'b'), (NULL, NULL);
--@sync
UPDATE heap SET w = 'c' WHERE v = 1 LIMIT 1;
DELETE FROM heap WHERE v IS NULL;

-- a MyISAM table changed inside a transaction that is rolled back: its change stays (and replicates)
CREATE TABLE mi (id INT PRIMARY KEY, v INT) ENGINE=MyISAM;
BEGIN;
INSERT INTO a VALUES (20, 0, 'rolled back');
INSERT INTO mi VALUES (1, 1);
ROLLBACK;
INSERT INTO mi VALUES (2, 2);
UPDATE mi SET v = v + 1;
