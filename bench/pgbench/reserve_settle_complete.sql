-- The ordinary baseline's second flow, for the share Consign's load creates uncaptured and
-- completes later (`--uncaptured`): the same three transactions as `ceiling_complete.sql`, written
-- the ordinary way, a statement per round trip, each transaction locking its order first.
\set oid random(1, :orders)
BEGIN;
UPDATE orders SET next_shipment_number = next_shipment_number + 1, version = version + 1, updated_at = (extract(epoch from clock_timestamp()) * 1000)::bigint WHERE id = :oid RETURNING next_shipment_number - 1 AS n \gset
SELECT line_id, quantity, allocated, in_capture, unit_price FROM order_lines WHERE order_id = :oid ORDER BY position;
INSERT INTO shipments (order_id, number, state, gtg, shipped, carrier, service, packages, tracking, return_slip_tracking, capture_amount, carries_shipping_fee, created_at, updated_at, needs_review, internal_comment) VALUES (:oid, :n, 'uncaptured', 0, 0, '', '', 0, '', '', NULL, 0, 0, 0, 0, '');
INSERT INTO shipment_lines (order_id, number, line_id, quantity) VALUES (:oid, :n, :oid, 1);
UPDATE order_lines SET allocated = allocated + 1 WHERE order_id = :oid AND line_id = :oid AND allocated + 1 <= quantity;
COMMIT;
BEGIN;
UPDATE orders SET committed = committed + 1000, version = version + 1 WHERE id = :oid;
SELECT state, capture_amount FROM shipments WHERE order_id = :oid AND number = :n;
SELECT line_id, quantity, allocated, in_capture, unit_price FROM order_lines WHERE order_id = :oid ORDER BY position;
UPDATE shipments SET state = 'pending', capture_amount = 1000, updated_at = 1 WHERE order_id = :oid AND number = :n AND state = 'uncaptured';
UPDATE order_lines SET in_capture = in_capture + 1 WHERE order_id = :oid AND line_id = :oid AND in_capture + 1 <= allocated;
INSERT INTO capture_attempts (order_id, number, attempt, idempotency_key, amount, final_capture, state, created_at, updated_at, passes, void_on_decline, on_capture) VALUES (:oid, :n, 1, 'bench-' || :oid || '-' || :n, 1000, 0, 'pending', 0, 0, 0, 0, 'tracking=T1');
COMMIT;
BEGIN;
UPDATE capture_attempts SET state = 'succeeded', provider_reference = 'ref', updated_at = 1 WHERE order_id = :oid AND idempotency_key = 'bench-' || :oid || '-' || :n AND state IN ('pending', 'unknown', 'needs_review');
UPDATE shipments SET state = 'captured', capture_reference = 'ref', needs_review = 0, shipped = 1, tracking = 'T1', updated_at = 1 WHERE order_id = :oid AND number = :n AND state = 'pending';
UPDATE counters SET value = value + 1 WHERE name = 'invoice_number' RETURNING value AS inv \gset
INSERT INTO invoices (number, order_id, shipment_number, amount, issued_at) VALUES (:inv, :oid, :n, 1000, 0);
UPDATE counters SET value = value + 1 WHERE name = 'outbox_id' RETURNING value AS msg \gset
INSERT INTO outbox (id, order_id, number, kind, state, attempts, due_at, created_at) VALUES (:msg, :oid, :n, 'shipping_confirmation', 'pending', 0, 0, 0);
COMMIT;
