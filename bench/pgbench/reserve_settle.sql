-- The two short transactions a crash-safe capture needs, on Consign's own schema, as pgbench
-- runs them: reserve (lock the order, read its lines, write the shipment, its line, the guarded
-- allocation and the pending capture attempt) and settle (record the capture, mark the shipment
-- captured, number the invoice). `consign-bench --baseline` prepares the data and runs this.
\set oid random(1, :orders)
BEGIN;
UPDATE orders SET next_shipment_number = next_shipment_number + 1, committed = committed + 1000, updated_at = (extract(epoch from clock_timestamp()) * 1000)::bigint WHERE id = :oid RETURNING next_shipment_number - 1 AS n \gset
SELECT line_id, quantity, allocated, in_capture, unit_price FROM order_lines WHERE order_id = :oid ORDER BY position;
INSERT INTO shipments (order_id, number, state, gtg, shipped, carrier, service, packages, tracking, return_slip_tracking, capture_amount, carries_shipping_fee, created_at, updated_at, needs_review, internal_comment) VALUES (:oid, :n, 'pending', 0, 0, '', '', 0, '', '', 1000, 0, 0, 0, 0, '');
INSERT INTO shipment_lines (order_id, number, line_id, quantity) VALUES (:oid, :n, :oid, 1);
UPDATE order_lines SET allocated = allocated + 1, in_capture = in_capture + 1 WHERE order_id = :oid AND line_id = :oid AND allocated + 1 <= quantity;
INSERT INTO capture_attempts (order_id, number, attempt, idempotency_key, amount, final_capture, state, created_at, updated_at, passes, void_on_decline) VALUES (:oid, :n, 1, 'bench-' || :oid || '-' || :n, 1000, 0, 'pending', 0, 0, 0, 1);
COMMIT;
BEGIN;
UPDATE capture_attempts SET state = 'succeeded', provider_reference = 'ref', updated_at = 1 WHERE order_id = :oid AND idempotency_key = 'bench-' || :oid || '-' || :n AND state IN ('pending', 'unknown', 'needs_review');
UPDATE shipments SET state = 'captured', capture_reference = 'ref', needs_review = 0, updated_at = 1 WHERE order_id = :oid AND number = :n AND state = 'pending';
UPDATE counters SET value = value + 1 WHERE name = 'invoice_number' RETURNING value AS inv \gset
INSERT INTO invoices (number, order_id, shipment_number, amount, issued_at) VALUES (:inv, :oid, :n, 1000, 0);
COMMIT;
