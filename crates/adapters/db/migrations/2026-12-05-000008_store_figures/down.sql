DROP INDEX shipments_needing_review;
