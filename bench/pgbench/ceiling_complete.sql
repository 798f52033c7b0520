-- The ceiling's second flow, for the share Consign's load creates uncaptured and completes
-- later (`--uncaptured`): created uncaptured, its capture started with the completion that waits
-- for it, the capture settled with that completion (shipped with its tracking, invoiced, a
-- confirmation queued). Three transactions, one prepared statement each, as SQLite's ceiling
-- runs them (`crates/bench/src/queued_writer.rs`). Consign claims confirmations and marks them
-- sent a pass at a time (up to 20 in one statement each): both are left out here.
\set oid random(1, :orders)
WITH o AS (
  UPDATE orders SET next_shipment_number = next_shipment_number + 1, updated_at = 1,
    version = version + 1 WHERE id = :oid RETURNING id, next_shipment_number - 1 AS n),
s AS (
  INSERT INTO shipments (order_id, number, state, gtg, shipped, carrier, service, packages, tracking,
    return_slip_tracking, capture_amount, carries_shipping_fee, created_at, updated_at, needs_review,
    internal_comment)
  SELECT id, n, 'uncaptured', 0, 0, '', '', 0, '', '', NULL, 0, 0, 0, 0, '' FROM o),
l AS (
  INSERT INTO shipment_lines (order_id, number, line_id, quantity) SELECT id, n, id, 1 FROM o),
a AS (
  UPDATE order_lines SET allocated = allocated + 1
  WHERE order_id = :oid AND line_id = :oid AND allocated + 1 <= quantity RETURNING 1)
SELECT n FROM o \gset
WITH s AS (
  UPDATE shipments SET state = 'pending', capture_amount = 1000, updated_at = 1
  WHERE order_id = :oid AND number = :n AND state = 'uncaptured' RETURNING order_id, number),
l AS (
  UPDATE order_lines SET in_capture = in_capture + 1
  WHERE order_id = :oid AND line_id = :oid AND in_capture + 1 <= allocated
    AND EXISTS (SELECT 1 FROM s)),
o AS (
  UPDATE orders SET committed = committed + 1000, version = version + 1
  WHERE id = :oid AND EXISTS (SELECT 1 FROM s))
INSERT INTO capture_attempts (order_id, number, attempt, idempotency_key, amount, final_capture,
  state, created_at, updated_at, passes, void_on_decline, on_capture)
SELECT order_id, number, 1, 'bench-' || order_id || '-' || number, 1000, 0, 'pending', 0, 0, 0, 0,
  'tracking=T1' FROM s;
WITH a AS (
  UPDATE capture_attempts SET state = 'succeeded', provider_reference = 'ref', updated_at = 1
  WHERE order_id = :oid AND idempotency_key = 'bench-' || :oid || '-' || :n
    AND state IN ('pending', 'unknown', 'needs_review') RETURNING number),
s AS (
  UPDATE shipments SET state = 'captured', capture_reference = 'ref', needs_review = 0, shipped = 1,
    tracking = 'T1', updated_at = 1
  WHERE order_id = :oid AND number = :n AND state = 'pending' AND EXISTS (SELECT 1 FROM a)),
v AS (
  UPDATE counters SET value = value + 1 WHERE name = 'invoice_number' AND EXISTS (SELECT 1 FROM a)
  RETURNING value),
i AS (
  INSERT INTO invoices (number, order_id, shipment_number, amount, issued_at)
  SELECT value, :oid, :n, 1000, 0 FROM v),
m AS (
  UPDATE counters SET value = value + 1 WHERE name = 'outbox_id' AND EXISTS (SELECT 1 FROM a)
  RETURNING value)
INSERT INTO outbox (id, order_id, number, kind, state, attempts, due_at, created_at)
SELECT value, :oid, :n, 'shipping_confirmation', 'pending', 0, 0, 0 FROM m;
