-- A version per order, bumped by every write that changes what a shipment is planned from (the
-- order's counters and its lines): a shipment planned from an unlocked read is written only if
-- the version is still the one it read (compare-and-set), else planned again.
ALTER TABLE orders ADD COLUMN version BIGINT NOT NULL DEFAULT 0;
