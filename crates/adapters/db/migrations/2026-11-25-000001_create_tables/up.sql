-- One schema for PostgreSQL and SQLite: only types and constraints both understand.
-- Booleans are INTEGER 0/1, money is BIGINT minor units, times are BIGINT Unix milliseconds.
-- Every order-owned table carries order_id in its primary key, so every write stays on one order.

CREATE TABLE counters (
    name TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO counters (name, value) VALUES ('order_id', 0), ('line_id', 0), ('customer_id', 0), ('api_key_id', 0);

CREATE TABLE settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE customers (
    id BIGINT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE
);

CREATE TABLE orders (
    id BIGINT PRIMARY KEY,
    currency TEXT NOT NULL,
    customer_id BIGINT NOT NULL,
    email TEXT NOT NULL,
    first_name TEXT NOT NULL,
    last_name TEXT NOT NULL,
    address TEXT NOT NULL,
    zipcode TEXT NOT NULL,
    city TEXT NOT NULL,
    country TEXT NOT NULL,
    shipping_fee BIGINT NOT NULL CHECK (shipping_fee >= 0),
    payment_provider TEXT,
    payment_reference TEXT,
    authorized BIGINT NOT NULL CHECK (authorized >= 0),
    committed BIGINT NOT NULL DEFAULT 0,
    shipping_fee_committed INTEGER NOT NULL DEFAULT 0,
    next_shipment_number INTEGER NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CHECK (committed >= 0 AND committed <= authorized)
);
CREATE INDEX orders_by_created ON orders (created_at, id);
CREATE INDEX orders_by_customer ON orders (customer_id, created_at, id);

CREATE TABLE order_lines (
    order_id BIGINT NOT NULL REFERENCES orders (id),
    line_id BIGINT NOT NULL,
    position INTEGER NOT NULL,
    sku TEXT NOT NULL,
    name TEXT NOT NULL,
    unit_price BIGINT NOT NULL CHECK (unit_price >= 0),
    tax_rate INTEGER NOT NULL,
    quantity INTEGER NOT NULL CHECK (quantity > 0),
    allocated INTEGER NOT NULL DEFAULT 0,
    in_capture INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (order_id, line_id),
    -- The invariant every test checks, enforced by the database as the last line of defence.
    CHECK (allocated >= 0 AND allocated <= quantity),
    CHECK (in_capture >= 0 AND in_capture <= allocated)
);

CREATE TABLE shipments (
    order_id BIGINT NOT NULL REFERENCES orders (id),
    number INTEGER NOT NULL,
    state TEXT NOT NULL,
    gtg INTEGER NOT NULL,
    shipped INTEGER NOT NULL,
    carrier TEXT NOT NULL,
    service TEXT NOT NULL,
    packages INTEGER NOT NULL,
    tracking TEXT NOT NULL,
    return_slip_tracking TEXT NOT NULL,
    send_email INTEGER,
    capture_amount BIGINT,
    carries_shipping_fee INTEGER NOT NULL DEFAULT 0,
    capture_reference TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    shipped_at BIGINT,
    -- Unique shipment numbers per order; numbers are never reused.
    PRIMARY KEY (order_id, number)
);
CREATE INDEX shipments_by_state ON shipments (state, created_at);

CREATE TABLE shipment_lines (
    order_id BIGINT NOT NULL,
    number INTEGER NOT NULL,
    line_id BIGINT NOT NULL,
    quantity INTEGER NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (order_id, number, line_id),
    FOREIGN KEY (order_id, number) REFERENCES shipments (order_id, number),
    FOREIGN KEY (order_id, line_id) REFERENCES order_lines (order_id, line_id)
);

CREATE TABLE capture_attempts (
    order_id BIGINT NOT NULL,
    number INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    idempotency_key TEXT NOT NULL,
    amount BIGINT NOT NULL CHECK (amount >= 0),
    final_capture INTEGER NOT NULL,
    state TEXT NOT NULL,
    provider_reference TEXT,
    decline_code TEXT,
    decline_message TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (order_id, number, attempt),
    UNIQUE (order_id, idempotency_key),
    FOREIGN KEY (order_id, number) REFERENCES shipments (order_id, number)
);
CREATE INDEX capture_attempts_by_state ON capture_attempts (state, created_at);

CREATE TABLE api_keys (
    id BIGINT PRIMARY KEY,
    label TEXT NOT NULL,
    prefix TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
