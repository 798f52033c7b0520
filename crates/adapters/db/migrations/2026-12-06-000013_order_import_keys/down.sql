DROP TABLE order_imports;
