-- A change's document is written once and read whole (by the relay and the feed), never queried
-- inside: json keeps the bytes as the catalog wrote them, instead of building jsonb's binary form on
-- every append and rendering it again on every read.
ALTER TABLE changes_outbox ALTER COLUMN doc TYPE json USING doc::json;
