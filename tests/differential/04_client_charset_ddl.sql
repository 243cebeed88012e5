-- Class 4: DDL from clients in other character sets (rpl_charset, rpl_charset_sjis): the binlog
-- holds the statement in the client's bytes, with its character set in the event; identifiers,
-- comments, defaults and ENUM values must arrive as the same characters.

--@connect l1 charset=latin1
CREATE TABLE `café_ü` (
  id INT PRIMARY KEY,
  `naïve` VARCHAR(20) DEFAULT 'Ångström' COMMENT 'Grüße «quoted»',
  e ENUM('née', 'à la', 'plain') DEFAULT 'née',
  l1 VARCHAR(10) CHARACTER SET latin1 DEFAULT 'ÿ€'
) DEFAULT CHARSET=utf8mb4 COMMENT 'Tabelle für Grüße';
INSERT INTO `café_ü` (id) VALUES (1);
INSERT INTO `café_ü` VALUES (2, 'Ærø', 'à la', 'é');
ALTER TABLE `café_ü` ADD COLUMN `straße` VARCHAR(10) DEFAULT 'weiß' COMMENT 'Maß';
CREATE PROCEDURE `prüfe`() SELECT 'Prüfung' AS `Ergebnis`;

--@connect cyr charset=cp1251
CREATE TABLE `таблица` (
  id INT PRIMARY KEY,
  `имя` VARCHAR(20) DEFAULT 'Привет' COMMENT 'комментарий',
  s SET('да', 'нет') DEFAULT 'да',
  c1251 VARCHAR(10) CHARACTER SET cp1251 DEFAULT 'ёж'
) DEFAULT CHARSET=utf8mb4;
INSERT INTO `таблица` (id) VALUES (1);
INSERT INTO `таблица` VALUES (2, 'Мир', 'нет', 'Ъ');
CREATE VIEW `вид` AS SELECT id, `имя` AS `название` FROM `таблица` WHERE `имя` <> 'нет';

-- Shift-JIS: the second byte of ソ, 表, 十 and 能 is 0x5C, a backslash in ASCII
--@connect jp charset=sjis
CREATE TABLE `表ソ` (
  id INT PRIMARY KEY,
  `能` VARCHAR(20) DEFAULT 'ソ表十' COMMENT '予定表',
  e ENUM('ソ', '表', '十') DEFAULT '表',
  sj VARCHAR(10) CHARACTER SET sjis DEFAULT '能ソ'
) DEFAULT CHARSET=utf8mb4 COMMENT 'ソ表';
INSERT INTO `表ソ` (id) VALUES (1);
INSERT INTO `表ソ` VALUES (2, '十能', 'ソ', '表');
ALTER TABLE `表ソ` ALTER COLUMN `能` SET DEFAULT '能表';
INSERT INTO `表ソ` (id) VALUES (3);
