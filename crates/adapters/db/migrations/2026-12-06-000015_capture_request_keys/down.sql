ALTER TABLE capture_attempts DROP COLUMN request_key;
