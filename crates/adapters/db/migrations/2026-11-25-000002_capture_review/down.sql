DROP INDEX capture_attempts_by_order_state;
ALTER TABLE shipments DROP COLUMN needs_review;
ALTER TABLE capture_attempts DROP COLUMN last_error;
ALTER TABLE capture_attempts DROP COLUMN passes;
