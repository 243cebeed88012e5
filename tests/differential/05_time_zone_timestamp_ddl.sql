-- Class 5: DDL whose effect depends on the session's time_zone and timestamp (rpl_timezone,
-- rpl_row_until / main.timezone2): a replica runs a DDL at the time and in the zone of the source's
-- session, which the Query event carries.

SET time_zone = '+05:00';
SET timestamp = 1700000000;
-- a TIMESTAMP default literal is read in the session's zone
CREATE TABLE tz (id INT PRIMARY KEY, ts TIMESTAMP NOT NULL DEFAULT '2024-01-01 12:00:00', dt DATETIME DEFAULT CURRENT_TIMESTAMP, ts2 TIMESTAMP NULL DEFAULT NULL);
INSERT INTO tz (id) VALUES (1), (2);
INSERT INTO tz (id, ts, ts2) VALUES (3, '2030-06-01 00:00:00', NOW());

-- existing rows take the ALTER's time
SET timestamp = 1700003600;
ALTER TABLE tz ADD COLUMN added_ts TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP;
SET timestamp = 1700003601.123456;
ALTER TABLE tz ADD COLUMN added_dt DATETIME(6) NOT NULL DEFAULT NOW(6);

SET time_zone = '-03:30';
ALTER TABLE tz ALTER COLUMN ts SET DEFAULT '2024-06-01 08:00:00';
INSERT INTO tz (id) VALUES (4);

-- rows computed from the clock go as row events
SET timestamp = 1700007200.5;
CREATE TABLE snap (PRIMARY KEY (id)) AS SELECT id, NOW(6) AS taken, UNIX_TIMESTAMP() AS unix_now FROM tz;

SET time_zone = '+13:00';
SET timestamp = 1700010000;
CREATE TABLE later (id INT PRIMARY KEY);
INSERT INTO later VALUES (1), (2);
ALTER TABLE later ADD COLUMN made DATE NOT NULL DEFAULT (CURRENT_DATE), ADD COLUMN ts TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3);
SET timestamp = 1700010500;
UPDATE later SET id = id + 10 WHERE id = 2;
SET timestamp = DEFAULT;
SET time_zone = DEFAULT;
