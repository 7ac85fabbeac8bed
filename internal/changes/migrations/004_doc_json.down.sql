ALTER TABLE changes_outbox ALTER COLUMN doc TYPE jsonb USING doc::jsonb;
