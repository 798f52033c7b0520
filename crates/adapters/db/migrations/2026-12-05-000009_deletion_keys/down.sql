DROP TABLE shipment_deletions;
