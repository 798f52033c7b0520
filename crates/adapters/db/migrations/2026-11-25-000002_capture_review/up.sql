-- Capture attempts whose outcome stays unknown: how often recovery tried, the last reason, and
-- a flag on the shipment once it needs an operator's review.
ALTER TABLE capture_attempts ADD COLUMN passes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE capture_attempts ADD COLUMN last_error TEXT;
ALTER TABLE shipments ADD COLUMN needs_review INTEGER NOT NULL DEFAULT 0;
CREATE INDEX capture_attempts_by_order_state ON capture_attempts (order_id, state);
