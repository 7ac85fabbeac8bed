-- pub_seq is the sequence consumers of the feed (polling, SSE, webhooks) read by. seq cannot be
-- that: it is a bigserial taken at insert, and concurrent transactions commit out of seq order, so
-- a reader that saw seq 11 may later find seq 10 appear and a poller resuming "after 11" would miss
-- it. The relay, the single holder of its advisory lock, assigns pub_seq when it marks rows
-- published, in one statement that also advances changes_feed.last_pub_seq: pub_seq values become
-- visible only in increasing order, so "after N" never skips a row that commits later.
ALTER TABLE changes_outbox ADD COLUMN pub_seq bigint;
CREATE UNIQUE INDEX changes_outbox_pub_seq_idx ON changes_outbox (pub_seq) WHERE pub_seq IS NOT NULL;
CREATE INDEX changes_outbox_published_at_idx ON changes_outbox (published_at) WHERE pub_seq IS NOT NULL;

-- One row: the last pub_seq handed out (a counter that survives pruning, unlike max(pub_seq)) and
-- the highest pub_seq pruned by retention (resuming before it answers 410 Gone).
CREATE TABLE changes_feed (
    id             boolean PRIMARY KEY DEFAULT true CHECK (id),
    last_pub_seq   bigint NOT NULL DEFAULT 0,
    pruned_through bigint NOT NULL DEFAULT 0
);

-- Rows published before this migration keep their order: their pub_seq is their seq.
UPDATE changes_outbox SET pub_seq = seq WHERE published_at IS NOT NULL;
INSERT INTO changes_feed (last_pub_seq)
SELECT coalesce(max(seq), 0) FROM changes_outbox WHERE published_at IS NOT NULL;
