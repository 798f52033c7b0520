DROP TABLE hand_settlements;
