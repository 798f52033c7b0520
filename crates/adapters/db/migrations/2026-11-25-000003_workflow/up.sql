-- The rest of the shipment workflow: which client request created a shipment (for idempotent
-- retries), back-office comments, captures started by complete/capture (a decline leaves the
-- shipment uncaptured, and changes wait for the capture), and stored idempotent answers.
ALTER TABLE shipments ADD COLUMN request_key TEXT;
ALTER TABLE shipments ADD COLUMN internal_comment TEXT NOT NULL DEFAULT '';
CREATE UNIQUE INDEX shipments_by_request_key ON shipments (request_key);
CREATE INDEX shipments_by_flags ON shipments (shipped, gtg, created_at);
ALTER TABLE capture_attempts ADD COLUMN void_on_decline INTEGER NOT NULL DEFAULT 1;
ALTER TABLE capture_attempts ADD COLUMN on_capture TEXT;

CREATE TABLE idempotency_keys (
    api_key_id BIGINT NOT NULL,
    request_key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    state TEXT NOT NULL,
    status INTEGER,
    content_type TEXT,
    body TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (api_key_id, request_key)
);
CREATE INDEX idempotency_keys_by_created ON idempotency_keys (created_at);
