DROP TABLE changes_feed;
DROP INDEX changes_outbox_published_at_idx;
DROP INDEX changes_outbox_pub_seq_idx;
ALTER TABLE changes_outbox DROP COLUMN pub_seq;
