DROP INDEX shipments_by_flags;
CREATE INDEX shipments_by_flags ON shipments (shipped, gtg, created_at);
