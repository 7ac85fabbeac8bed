-- Per-source figures of the validate stage, added batch by batch (quality.Store.Add).
CREATE TABLE quality_sources (
    source     text PRIMARY KEY,
    read       bigint NOT NULL DEFAULT 0,
    valid      bigint NOT NULL DEFAULT 0,
    rejected   bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL
);

-- kind 'rejected': records rejected with a reason at field (indices written *), each record once per
-- field; kind 'normalized': values the stage normalized, by kind of field.
CREATE TABLE quality_fields (
    source text NOT NULL,
    kind   text NOT NULL CHECK (kind IN ('rejected', 'normalized')),
    field  text NOT NULL,
    n      bigint NOT NULL,
    PRIMARY KEY (source, kind, field)
);

-- The next raw offset to count, per partition: a batch the stage reads again after a crash, or in
-- a replay, is not counted twice.
CREATE TABLE quality_positions (
    topic       text NOT NULL,
    partition   integer NOT NULL,
    next_offset bigint NOT NULL,
    PRIMARY KEY (topic, partition)
);
