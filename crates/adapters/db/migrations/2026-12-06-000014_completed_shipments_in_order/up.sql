-- `GET shipments?status=completed` (shipped, good to go or not) pages through shipments by
-- creation time. The index led by (shipped, gtg) held them in creation order within each gtg,
-- not across both, so every such page read and sorted every completed shipment there ever was.
-- Led by (shipped, created_at), it reads a page in order and stops; the other two filters
-- (shipped = 0 and a gtg) read the open shipments in order and skip the other gtg. One index
-- still, so a shipment's writes cost what they did.
DROP INDEX shipments_by_flags;
CREATE INDEX shipments_by_flags ON shipments (shipped, created_at, order_id, number);
