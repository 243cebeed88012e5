-- Foreign keys (rpl_foreign_key_innodb, rpl_row_fk_cascade): a replica's InnoDB runs the cascades
-- itself (they are not in the binlog); a row written with foreign_key_checks=0 carries that flag.

CREATE TABLE parent (id INT PRIMARY KEY, name VARCHAR(10));
CREATE TABLE child (id INT PRIMARY KEY, pid INT, v INT,
  FOREIGN KEY (pid) REFERENCES parent (id) ON DELETE CASCADE ON UPDATE CASCADE);
CREATE TABLE grandchild (id INT PRIMARY KEY, cid INT,
  FOREIGN KEY (cid) REFERENCES child (id) ON DELETE SET NULL);
INSERT INTO parent VALUES (1, 'p1'), (2, 'p2'), (3, 'p3');
INSERT INTO child VALUES (10, 1, 0), (11, 1, 0), (20, 2, 0), (30, 3, 0);
INSERT INTO grandchild VALUES (100, 10), (101, 11), (200, 20);
--@sync
UPDATE parent SET id = 4 WHERE id = 3;
DELETE FROM parent WHERE id = 1;
UPDATE child SET v = v + 1 WHERE pid = 4;

SET foreign_key_checks = 0;
INSERT INTO child VALUES (99, 999, 0);
SET foreign_key_checks = 1;
DELETE FROM parent WHERE id = 2;
