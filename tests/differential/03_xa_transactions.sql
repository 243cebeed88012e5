-- Class 3: XA transactions (rpl_xa, rpl_xa_survive_disconnect): since 10.5 a prepared XA transaction
-- is in the binlog at XA PREPARE; XA COMMIT / XA ROLLBACK come later, as their own event groups.

CREATE TABLE xt (id INT PRIMARY KEY, v VARCHAR(20));
INSERT INTO xt VALUES (0, 'before');
--@sync

-- prepared, then rolled back: its changes must never appear
XA START 'rb1';
INSERT INTO xt VALUES (1, 'rolled back');
UPDATE xt SET v = 'rolled back' WHERE id = 0;
XA END 'rb1';
XA PREPARE 'rb1';
XA ROLLBACK 'rb1';
--@sync

-- prepared, then committed
XA START 'c1';
INSERT INTO xt VALUES (2, 'committed');
XA END 'c1';
XA PREPARE 'c1';
XA COMMIT 'c1';
--@sync

-- one phase
XA START 'op1';
INSERT INTO xt VALUES (3, 'one phase');
XA END 'op1';
XA COMMIT 'op1' ONE PHASE;

-- rolled back before PREPARE: nothing reaches the binlog
XA START 'rb0';
INSERT INTO xt VALUES (4, 'never');
XA END 'rb0';
XA ROLLBACK 'rb0';

-- prepared; its connection leaves; other transactions commit; then it commits
--@connect xa1
XA START 'late';
INSERT INTO xt VALUES (500, 'late commit');
UPDATE xt SET v = 'late' WHERE id = 2;
XA END 'late';
XA PREPARE 'late';
--@disconnect xa1
INSERT INTO xt VALUES (600, 'in between');
UPDATE xt SET v = 'in between' WHERE id = 3;
XA COMMIT 'late';
--@sync

-- prepared; others commit; then rolled back
--@connect xa2
XA START 'late_rb';
INSERT INTO xt VALUES (700, 'late rollback');
DELETE FROM xt WHERE id = 0;
XA END 'late_rb';
XA PREPARE 'late_rb';
--@disconnect xa2
INSERT INTO xt VALUES (800, 'in between 2');
XA ROLLBACK 'late_rb';
INSERT INTO xt VALUES (900, 'last');
