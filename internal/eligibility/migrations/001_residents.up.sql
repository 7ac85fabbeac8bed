-- The eligibility store: what the residents' registry says about each resident, keyed by the
-- resident's pseudonym (keyed HMAC of the normalized СНИЛС, computed at the connector). No column
-- holds a national id, a name or a document number.
CREATE TABLE eligibility_residents (
    pseudonym    text PRIMARY KEY CHECK (pseudonym ~ '^[0-9a-f]{64}$'),
    source       text NOT NULL,
    -- The resident document (schemas/resident.json) as validated.
    facts        jsonb NOT NULL CHECK (jsonb_typeof(facts) = 'object'),
    -- sha256 of the canonical JSON of facts: a replayed record with the same hash changes nothing.
    content_hash text NOT NULL,
    -- When the source last sent this record, and when the row last changed.
    seen_at      timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);
CREATE INDEX eligibility_residents_source_idx ON eligibility_residents (source);
