-- Class 1: BINARY(n) and the types stored like it (CHAR(n) CHARACTER SET binary, UUID, INET6) with
-- values that end in zero bytes: a row event carries a BINARY(n) value without its trailing zero
-- bytes (as the server pads it), so the applied value, and a key looked up by it, must be padded.
-- After rpl_row_colSize / rpl_extra_col_slave: binary columns as keys and as data.

-- one unique key (net effect per key)
CREATE TABLE bin_pk (k BINARY(4) NOT NULL PRIMARY KEY, v BINARY(8), c CHAR(5) CHARACTER SET binary, n INT);
INSERT INTO bin_pk VALUES
  (X'01000000', X'0200000000000000', X'6100000000', 1),
  (X'00000000', X'00', X'00', 2),
  (X'61620000', 'ab', 'ab', 3),
  (X'00000001', NULL, NULL, 4),
  (X'0A0B0C0D', X'0A0B0C0D0E0F1011', 'abcde', 5);
--@sync
UPDATE bin_pk SET n = n + 10 WHERE k = X'01000000';
UPDATE bin_pk SET v = X'FF00', c = X'0000' WHERE k = X'00000000';
DELETE FROM bin_pk WHERE k = X'61620000';
UPDATE bin_pk SET k = X'05000000' WHERE k = X'00000001';
--@sync
UPDATE bin_pk SET k = X'0A0B0000' WHERE k = X'0A0B0C0D';

-- a second unique key (applied change by change, before-images compared)
CREATE TABLE bin_uk (id INT PRIMARY KEY, code BINARY(3) NOT NULL, tag BINARY(4), UNIQUE KEY (code));
INSERT INTO bin_uk VALUES (1, X'010000', X'01000000'), (2, X'000000', X'00000000'), (3, 'a', 'b'), (4, X'0102', NULL);
--@sync
UPDATE bin_uk SET tag = X'02' WHERE id = 1;
UPDATE bin_uk SET code = X'030000' WHERE id = 2;
DELETE FROM bin_uk WHERE id = 3;
UPDATE bin_uk SET id = 40 WHERE code = X'010200';

-- no key at all: rows are found by their whole before-image
CREATE TABLE bin_heap (b BINARY(4), v VARCHAR(10));
INSERT INTO bin_heap VALUES (X'01000000', 'a'), (X'01000000', 'a'), (X'00000000', 'b'), (NULL, 'c');
--@sync
DELETE FROM bin_heap WHERE b = X'01000000' LIMIT 1;
UPDATE bin_heap SET v = 'bb' WHERE b = X'00000000';

-- MariaDB 10.7+ fixed-size binary types, as primary keys and as data
CREATE TABLE uuids (id UUID NOT NULL PRIMARY KEY, n INT, other UUID);
INSERT INTO uuids VALUES
  ('00000000-0000-0000-0000-000000000000', 1, '11111111-2222-3333-4444-000000000000'),
  ('11111111-2222-3333-4444-000000000000', 2, '00000000-0000-0000-0000-000000000000'),
  ('00000000-0000-0000-0000-000000000001', 3, NULL),
  ('01000000-0000-0000-0000-000000000000', 4, '01000000-0000-0000-0000-000000000000'),
  ('6ccd780c-baba-1026-9564-5b8c656024db', 5, '6ccd780c-0000-1026-9564-000000000000');
--@sync
UPDATE uuids SET n = n * 10;
--@sync
DELETE FROM uuids WHERE id = '00000000-0000-0000-0000-000000000001';
UPDATE uuids SET id = '22222222-0000-0000-0000-000000000000' WHERE n = 20;

CREATE TABLE inet (ip INET6 NOT NULL PRIMARY KEY, n INT, other INET6);
INSERT INTO inet VALUES ('::', 1, '1::'), ('1::', 2, '::'), ('::1', 3, NULL), ('2001:db8::', 4, '2001:db8::'), ('::ffff:10.0.0.0', 5, '::ffff:10.0.0.0');
--@sync
UPDATE inet SET n = n + 1, other = '::';
DELETE FROM inet WHERE ip = '2001:db8::';
UPDATE inet SET ip = 'fe80::' WHERE ip = '1::';
