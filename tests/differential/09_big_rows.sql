-- Class 9: rows larger than 8 MB (rpl_row_blob_innodb, rpl_packet): one row image bigger than
-- a statement the DR server would take (max_allowed_packet, 16 MB by default on all servers here).
-- An UPDATE of such a row carries it twice (binlog_row_image=FULL).

CREATE TABLE big (id INT PRIMARY KEY, b LONGBLOB, t LONGTEXT CHARACTER SET utf8mb4, n INT);
-- 64 bytes x 163840 = 10 MiB, every byte value possible
INSERT INTO big VALUES (1, REPEAT(UNHEX(SHA2('row one', 512)), 163840), 'small', 1);
INSERT INTO big VALUES (2, 'small', NULL, 2);
--@sync
UPDATE big SET n = 10 WHERE id = 1;
UPDATE big SET b = REPEAT(UNHEX(SHA2('row two', 512)), 140000) WHERE id = 2;
DELETE FROM big WHERE id = 1;
-- 9 MB of two-byte characters
UPDATE big SET t = REPEAT('ü', 4500000), b = NULL WHERE id = 2;
