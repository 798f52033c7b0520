DROP TABLE idempotency_keys;
ALTER TABLE capture_attempts DROP COLUMN on_capture;
ALTER TABLE capture_attempts DROP COLUMN void_on_decline;
DROP INDEX shipments_by_flags;
DROP INDEX shipments_by_request_key;
ALTER TABLE shipments DROP COLUMN internal_comment;
ALTER TABLE shipments DROP COLUMN request_key;
