DROP TABLE changes_outbox;
