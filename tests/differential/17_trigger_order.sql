-- Several triggers for one table, timing and event (rpl_trigger, main.trigger_multi, 10.2.3+):
-- they fire in creation order unless FOLLOWS / PRECEDES says otherwise; promote must create them in
-- that order (ACTION_ORDER), and a PRECEDES/FOLLOWS names a trigger that must exist by then.

CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(40));
CREATE TRIGGER tr_z BEFORE INSERT ON t FOR EACH ROW SET NEW.v = CONCAT(NEW.v, '-z');
CREATE TRIGGER tr_a BEFORE INSERT ON t FOR EACH ROW SET NEW.v = CONCAT(NEW.v, '-a');
CREATE TRIGGER tr_m BEFORE INSERT ON t FOR EACH ROW PRECEDES tr_z SET NEW.v = CONCAT(NEW.v, '-m');
CREATE TRIGGER tr_after AFTER UPDATE ON t FOR EACH ROW SET @n = 1;
INSERT INTO t VALUES (1, 'row');
DROP TRIGGER tr_a;
CREATE TRIGGER tr_b BEFORE INSERT ON t FOR EACH ROW FOLLOWS tr_m SET NEW.v = CONCAT(NEW.v, '-b');
INSERT INTO t VALUES (2, 'row');
