-- How long a refund the provider accepted but has not made yet (Stripe's `pending`) rests after
-- each lookup before recovery looks it up again, on top of recovery's own interval: such a
-- refund may take days, and looking it up on every pass would spend a provider call (and a
-- write) per pass on each one. 0 for every other attempt: due at recovery's pace.
ALTER TABLE refund_attempts ADD COLUMN rest_millis BIGINT NOT NULL DEFAULT 0
    CHECK (rest_millis >= 0);
