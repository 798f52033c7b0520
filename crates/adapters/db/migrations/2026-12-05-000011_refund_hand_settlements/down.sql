DROP TABLE refund_hand_settlements;
