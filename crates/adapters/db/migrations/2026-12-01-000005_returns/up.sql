-- Returns and refunds. A refund is the mirror of a capture: reserved with a pending attempt and
-- a stable provider key, sent with no transaction open, settled. The money rule is also a
-- constraint here: what a shipment's returns hold (refunded or in flight) never exceeds what it
-- captured, and no line comes back more often than it was shipped.

-- Money the shipment's returns hold (refunded, pending or needing review), what was refunded,
-- and whether a return took its shipping fee. row_id is Centra's integer shipmentId, given the
-- first time a return needs it. The row_id indexes are partial: shipments and lines without a
-- return are not in them, so creating a shipment maintains no extra index.
ALTER TABLE shipments ADD COLUMN refund_held BIGINT NOT NULL DEFAULT 0
    CHECK (refund_held >= 0 AND refund_held <= COALESCE(capture_amount, 0));
ALTER TABLE shipments ADD COLUMN refunded BIGINT NOT NULL DEFAULT 0
    CHECK (refunded >= 0 AND refunded <= refund_held);
ALTER TABLE shipments ADD COLUMN shipping_fee_returned INTEGER NOT NULL DEFAULT 0;
ALTER TABLE shipments ADD COLUMN row_id BIGINT;
CREATE UNIQUE INDEX shipments_by_row_id ON shipments (row_id) WHERE row_id IS NOT NULL;

ALTER TABLE shipment_lines ADD COLUMN returned INTEGER NOT NULL DEFAULT 0
    CHECK (returned >= 0 AND returned <= quantity);
ALTER TABLE shipment_lines ADD COLUMN row_id BIGINT;
CREATE UNIQUE INDEX shipment_lines_by_row_id ON shipment_lines (row_id) WHERE row_id IS NOT NULL;

ALTER TABLE order_lines ADD COLUMN returned INTEGER NOT NULL DEFAULT 0
    CHECK (returned >= 0 AND returned <= allocated);
ALTER TABLE orders ADD COLUMN refunded BIGINT NOT NULL DEFAULT 0
    CHECK (refunded >= 0 AND refunded <= committed);

CREATE TABLE returns (
    id BIGINT PRIMARY KEY,
    order_id BIGINT NOT NULL,
    number INTEGER NOT NULL,
    completed INTEGER NOT NULL,
    return_to_stock INTEGER NOT NULL,
    comment TEXT NOT NULL,
    units BIGINT NOT NULL CHECK (units >= 0),
    shipping_cost BIGINT NOT NULL CHECK (shipping_cost >= 0),
    handling_cost BIGINT NOT NULL CHECK (handling_cost >= 0),
    voucher_value BIGINT NOT NULL CHECK (voucher_value >= 0),
    return_cost BIGINT NOT NULL CHECK (return_cost >= 0),
    tax_value BIGINT NOT NULL CHECK (tax_value >= 0),
    refund_value BIGINT NOT NULL
        CHECK (refund_value >= 0
           AND refund_value = units + shipping_cost + handling_cost - return_cost - voucher_value),
    takes_shipping_fee INTEGER NOT NULL,
    refund_state TEXT NOT NULL,
    refund_reference TEXT,
    decline_code TEXT,
    decline_message TEXT,
    send_email INTEGER NOT NULL DEFAULT 0,
    request_key TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    FOREIGN KEY (order_id, number) REFERENCES shipments (order_id, number)
);
CREATE INDEX returns_by_created ON returns (created_at, id);
CREATE INDEX returns_by_shipment ON returns (order_id, number);
-- The client request (its idempotency key, scoped to its API key) that created a return, so a
-- retry of the same request finds it instead of returning the items twice.
CREATE UNIQUE INDEX returns_by_request_key ON returns (request_key);

CREATE TABLE return_lines (
    return_id BIGINT NOT NULL REFERENCES returns (id),
    line_id BIGINT NOT NULL,
    id BIGINT NOT NULL UNIQUE,
    order_id BIGINT NOT NULL,
    number INTEGER NOT NULL,
    quantity INTEGER NOT NULL CHECK (quantity > 0),
    unit_price BIGINT NOT NULL CHECK (unit_price >= 0),
    PRIMARY KEY (return_id, line_id),
    FOREIGN KEY (order_id, number, line_id) REFERENCES shipment_lines (order_id, number, line_id)
);

CREATE TABLE refund_attempts (
    return_id BIGINT NOT NULL REFERENCES returns (id),
    attempt INTEGER NOT NULL,
    order_id BIGINT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    amount BIGINT NOT NULL CHECK (amount >= 0),
    state TEXT NOT NULL,
    provider_reference TEXT,
    provider_status TEXT,
    decline_code TEXT,
    decline_message TEXT,
    passes INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (return_id, attempt)
);
CREATE INDEX refund_attempts_by_state ON refund_attempts (state, updated_at);
-- At most one attempt per return without a definite outcome: never two refunds in flight.
CREATE UNIQUE INDEX refund_attempts_one_open ON refund_attempts (return_id)
    WHERE state IN ('pending', 'unknown', 'needs_review');

-- Credit notes, numbered gap-free from their own counter in the transaction that records the
-- refund.
CREATE TABLE credit_notes (
    number BIGINT PRIMARY KEY,
    return_id BIGINT NOT NULL UNIQUE REFERENCES returns (id),
    amount BIGINT NOT NULL CHECK (amount >= 0),
    issued_at BIGINT NOT NULL
);
INSERT INTO counters (name, value) VALUES ('return_id', 0), ('credit_note_number', 0);
