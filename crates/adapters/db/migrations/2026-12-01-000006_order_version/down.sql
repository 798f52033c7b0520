ALTER TABLE orders DROP COLUMN version;
