-- Where the resolve stage stands in each partition: the offset of the next record to apply.
-- Updated in the same transaction as the catalog rows it covers.
CREATE TABLE resolve_offsets (
    group_id    text NOT NULL,
    topic       text NOT NULL,
    partition   int NOT NULL,
    next_offset bigint NOT NULL,
    generation  int NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_id, topic, partition)
);
