-- The ceiling: the same durable writes as reserve_settle.sql, but each transaction is one
-- statement (data-modifying WITH clauses), run prepared (`pgbench -M prepared`): two round trips
-- and two commits per shipment, the least any crash-safe capture can cost on this schema.
-- `consign-bench --baseline` prepares the data and runs this beside the ordinary script.
\set oid random(1, :orders)
WITH o AS (
  UPDATE orders SET next_shipment_number = next_shipment_number + 1, committed = committed + 1000,
    updated_at = 1 WHERE id = :oid RETURNING id, next_shipment_number - 1 AS n),
s AS (
  INSERT INTO shipments (order_id, number, state, gtg, shipped, carrier, service, packages, tracking,
    return_slip_tracking, capture_amount, carries_shipping_fee, created_at, updated_at, needs_review,
    internal_comment)
  SELECT id, n, 'pending', 0, 0, '', '', 0, '', '', 1000, 0, 0, 0, 0, '' FROM o),
l AS (
  INSERT INTO shipment_lines (order_id, number, line_id, quantity) SELECT id, n, id, 1 FROM o),
a AS (
  UPDATE order_lines SET allocated = allocated + 1, in_capture = in_capture + 1
  WHERE order_id = :oid AND line_id = :oid AND allocated + 1 <= quantity RETURNING 1),
c AS (
  INSERT INTO capture_attempts (order_id, number, attempt, idempotency_key, amount, final_capture,
    state, created_at, updated_at, passes, void_on_decline)
  SELECT id, n, 1, 'bench-' || id || '-' || n, 1000, 0, 'pending', 0, 0, 0, 1 FROM o)
SELECT n FROM o \gset
WITH a AS (
  UPDATE capture_attempts SET state = 'succeeded', provider_reference = 'ref', updated_at = 1
  WHERE order_id = :oid AND idempotency_key = 'bench-' || :oid || '-' || :n
    AND state IN ('pending', 'unknown', 'needs_review') RETURNING number),
s AS (
  UPDATE shipments SET state = 'captured', capture_reference = 'ref', needs_review = 0, updated_at = 1
  WHERE order_id = :oid AND number = :n AND state = 'pending' AND EXISTS (SELECT 1 FROM a)),
v AS (
  UPDATE counters SET value = value + 1 WHERE name = 'invoice_number' AND EXISTS (SELECT 1 FROM a)
  RETURNING value)
INSERT INTO invoices (number, order_id, shipment_number, amount, issued_at)
SELECT value, :oid, :n, 1000, 0 FROM v;
