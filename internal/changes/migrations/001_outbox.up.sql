-- Change events, appended in the same transaction as the change. seq orders them; the relay
-- publishes in seq order and marks rows published only after Kafka acknowledged them.
CREATE TABLE changes_outbox (
    seq            bigserial PRIMARY KEY,
    entity_type    text NOT NULL,
    entity_id      text NOT NULL,
    op             text NOT NULL,
    version        bigint NOT NULL,
    changed_fields text[] NOT NULL DEFAULT '{}',
    doc            jsonb,
    district       text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    published_at   timestamptz
);
CREATE INDEX changes_outbox_unpublished_idx ON changes_outbox (seq) WHERE published_at IS NULL;
CREATE INDEX changes_outbox_entity_idx ON changes_outbox (entity_id, seq);
