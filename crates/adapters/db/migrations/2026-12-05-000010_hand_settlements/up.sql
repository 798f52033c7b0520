-- An operator's settlement of a capture under review, written in the settle's transaction. The
-- outcome an operator reports is their word, not the provider's: the books keep that it was
-- settled by hand, what was found and what the shipment became, where only the log used to.
CREATE TABLE hand_settlements (
    order_id BIGINT NOT NULL,
    idempotency_key TEXT NOT NULL,
    number INTEGER NOT NULL,
    finding TEXT NOT NULL,
    detail TEXT NOT NULL,
    state_after TEXT NOT NULL,
    settled_at BIGINT NOT NULL,
    PRIMARY KEY (order_id, idempotency_key),
    FOREIGN KEY (order_id, idempotency_key) REFERENCES capture_attempts (order_id, idempotency_key)
);
