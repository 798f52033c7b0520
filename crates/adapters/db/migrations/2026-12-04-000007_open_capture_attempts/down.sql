DROP INDEX capture_attempts_open;
CREATE INDEX capture_attempts_by_state ON capture_attempts (state, created_at);
