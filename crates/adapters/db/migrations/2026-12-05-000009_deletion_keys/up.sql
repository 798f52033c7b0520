-- The idempotency key of the request that deleted a shipment, written in the delete's
-- transaction. A process killed after that commit and before the key's answer was stored left
-- the key to be taken over by the retry, which used to find the shipment gone and answer "shipment
-- does not exist"; with the key recorded, it is answered as the delete was.
CREATE TABLE shipment_deletions (
    order_id BIGINT NOT NULL,
    number INTEGER NOT NULL,
    request_key TEXT NOT NULL,
    deleted_at BIGINT NOT NULL,
    PRIMARY KEY (order_id, number),
    FOREIGN KEY (order_id, number) REFERENCES shipments (order_id, number)
);
