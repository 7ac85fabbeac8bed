-- Every record on the dlq topic, indexed so operators can find, filter and replay what failed.
-- id is the dead-letter event's id: a re-delivered dead letter is the same row.
CREATE TABLE dlq_dead_letters (
    id               text PRIMARY KEY,
    -- seq orders the listing and is its keyset cursor: stable, unique, in indexing order.
    seq              bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    time             timestamptz NOT NULL,
    source           text NOT NULL,
    stage            text NOT NULL,
    key              text NOT NULL,
    subject          text NOT NULL DEFAULT '',
    entity_type      text NOT NULL DEFAULT '',
    op               text NOT NULL DEFAULT '',
    reasons          jsonb NOT NULL DEFAULT '[]',
    -- The rejected record exactly as read: an event envelope (original_json) or, when it was not
    -- JSON, its text with invalid bytes replaced.
    original         bytea NOT NULL,
    original_json    boolean NOT NULL,
    -- The rejected record's own event id and time (from its envelope, when it had one): the time is
    -- what "a later version landed" is measured against.
    original_id      text NOT NULL DEFAULT '',
    record_time      timestamptz,
    -- Where the rejected record was read, and where the dead letter itself sits on dlq.
    record_topic     text NOT NULL DEFAULT '',
    record_partition integer NOT NULL DEFAULT 0,
    record_offset    bigint NOT NULL DEFAULT 0,
    dlq_topic        text NOT NULL,
    dlq_partition    integer NOT NULL,
    dlq_offset       bigint NOT NULL,
    status           text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'replayed', 'resolved')),
    replayed_at      timestamptz,
    -- republish: the original went back to raw as replay_event_id; rerun: the source was read again.
    replay_mode      text CHECK (replay_mode IN ('republish', 'rerun')),
    replay_event_id  text,
    resolved_at      timestamptz,
    indexed_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX dlq_dead_letters_source_idx ON dlq_dead_letters (source, seq);
CREATE INDEX dlq_dead_letters_key_idx ON dlq_dead_letters (key, seq);
CREATE INDEX dlq_dead_letters_pending_idx ON dlq_dead_letters (seq) WHERE status <> 'resolved';
