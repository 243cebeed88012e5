-- Types (rpl_row_type_conversion, rpl_bit*, rpl_enum*, rpl_row_utf8mb4, rpl_vcol*): ENUM/SET, BIT,
-- 4-byte UTF-8, JSON, virtual and stored generated columns (one indexed), decimals, floats.

CREATE TABLE ty (
  id INT PRIMARY KEY,
  e ENUM('a', 'b', 'c d', 'é') DEFAULT NULL,
  s SET('x', 'y', 'z', '') DEFAULT NULL,
  b1 BIT(1), b9 BIT(9), b64 BIT(64),
  emoji VARCHAR(20) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin,
  j JSON,
  g1 INT AS (id * 2) VIRTUAL,
  g2 VARCHAR(30) CHARACTER SET utf8mb4 AS (CONCAT(emoji, '!')) STORED,
  dm DECIMAL(10,4), f FLOAT, d DOUBLE, y YEAR, tm TIME(3)
);
INSERT INTO ty (id, e, s, b1, b9, b64, emoji, j, dm, f, d, y, tm) VALUES
  (1, 'a', '', b'0', b'100000000', b'1111111111111111111111111111111111111111111111111111111111111111', '😀🚀', '{"k": [1, 2.5, "x"]}', -123456.7891, 1.0000001, 0.1, 1901, '-838:59:59.999'),
  (2, 'c d', 'x,z', b'1', b'0', b'0', '👩‍👩‍👧', '[]', 0.0001, -0.0, 1e308, 2155, '00:00:00.001'),
  (3, 'é', 'x,y,z,', NULL, NULL, NULL, '', NULL, NULL, NULL, NULL, NULL, NULL);
--@sync
UPDATE ty SET b9 = b9 + 1, s = CONCAT_WS(',', s, 'y'), emoji = CONCAT(emoji, '✓') WHERE id IN (1, 2);
ALTER TABLE ty MODIFY e ENUM('a', 'b', 'c d', 'é', 'new');
ALTER TABLE ty ADD COLUMN g3 INT AS (b9 + 0) VIRTUAL, ADD INDEX (g3);
UPDATE ty SET e = 'new', b9 = b9 + 1 WHERE id = 3;
DELETE FROM ty WHERE id = 2;
ALTER TABLE ty MODIFY s SET('x', 'y', 'z', '', 'w') AFTER id;
INSERT INTO ty (id, s, emoji) VALUES (4, 'w', '𝄞');
