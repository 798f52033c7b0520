ALTER TABLE refund_attempts DROP COLUMN rest_millis;
