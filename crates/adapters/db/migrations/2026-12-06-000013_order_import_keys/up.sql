-- The idempotency key of the request that imported an order, written in the import's
-- transaction. An import killed after that commit and before the key's answer was stored left
-- the key to be taken over by the retry, which imported the order again under a new id (with
-- the same payment authorisation, which both orders could then capture); with the key
-- recorded, the retry is answered with the order the first run made.
CREATE TABLE order_imports (
    request_key TEXT NOT NULL PRIMARY KEY,
    order_id BIGINT NOT NULL REFERENCES orders (id),
    imported_at BIGINT NOT NULL
);
