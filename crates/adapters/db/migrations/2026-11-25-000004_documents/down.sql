DROP TABLE outbox;
DROP TABLE invoices;
DELETE FROM counters WHERE name IN ('invoice_number', 'outbox_id');
