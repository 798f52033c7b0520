-- The monitoring figures (`GET /metrics`, at most every 5 seconds) counted the shipments
-- needing review by reading every shipment: a scrape that grew with the history. An index of
-- those shipments only stays as small as the review queue, and costs a write one comparison.
-- The count states the same condition as a literal (`health::NEEDS_REVIEW`), so that both
-- databases can prove it covers the index's rows.
CREATE INDEX shipments_needing_review ON shipments (order_id) WHERE needs_review = 1;
