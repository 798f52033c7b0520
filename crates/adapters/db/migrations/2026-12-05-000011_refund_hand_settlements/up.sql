-- An operator's settlement of a refund under review, written in the settle's transaction, as
-- hand_settlements does for captures: the books keep that it was settled by hand, what the
-- operator found at the provider and what the return's refund became.
CREATE TABLE refund_hand_settlements (
    return_id BIGINT NOT NULL REFERENCES returns (id),
    idempotency_key TEXT NOT NULL PRIMARY KEY REFERENCES refund_attempts (idempotency_key),
    finding TEXT NOT NULL,
    detail TEXT NOT NULL,
    state_after TEXT NOT NULL,
    settled_at BIGINT NOT NULL
);
