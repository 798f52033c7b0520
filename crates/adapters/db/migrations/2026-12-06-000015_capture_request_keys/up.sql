-- The idempotency key of the complete or capture request that started a capture attempt,
-- written with the attempt. A request answered 503 (its capture's outcome unknown) gives its
-- key up; recovery may then settle the attempt declined, which leaves the shipment uncaptured.
-- Its retry with the same key must be answered with that outcome, "capture failed", not start
-- a second capture: it finds its attempt by this key among the shipment's own attempts.
ALTER TABLE capture_attempts ADD COLUMN request_key TEXT;
