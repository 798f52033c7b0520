-- Invoices, numbered from one counter in the transaction that records the capture (so numbers
-- have no gaps or duplicates), and the outbox of shipping confirmations, written in the same
-- transaction as the change that ships a shipment and drained by a worker.
CREATE TABLE invoices (
    number BIGINT PRIMARY KEY,
    order_id BIGINT NOT NULL,
    shipment_number INTEGER NOT NULL,
    amount BIGINT NOT NULL,
    issued_at BIGINT NOT NULL,
    UNIQUE (order_id, shipment_number),
    FOREIGN KEY (order_id, shipment_number) REFERENCES shipments (order_id, number)
);
INSERT INTO counters (name, value) VALUES ('invoice_number', 0), ('outbox_id', 0);

CREATE TABLE outbox (
    id BIGINT PRIMARY KEY,
    order_id BIGINT NOT NULL,
    number INTEGER NOT NULL,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    due_at BIGINT NOT NULL,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    sent_at BIGINT,
    UNIQUE (order_id, number, kind)
);
CREATE INDEX outbox_by_due ON outbox (state, due_at);
