-- A DDL touching the task's database and another one (rpl_rename across databases). DRS refuses it
-- by design (engine/apply.py ddl_database): applying it would change a database the task does not
-- own, skipping it would lose a change. The native replica moves the table.

CREATE TABLE t (id INT PRIMARY KEY);
INSERT INTO t VALUES (1);
CREATE DATABASE diff_other;
CREATE TABLE diff_other.o (id INT PRIMARY KEY);
INSERT INTO diff_other.o VALUES (1);
RENAME TABLE t TO diff_other.t_moved;
CREATE TABLE t2 (id INT PRIMARY KEY);
