-- The position of each source, written only after Kafka acknowledged every record before it.
CREATE TABLE connector_checkpoints (
    source      text PRIMARY KEY,
    position    bytea NOT NULL,
    records     bigint NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- One row per run: what operators see with `socialhub sources`.
CREATE TABLE connector_runs (
    id          bigserial PRIMARY KEY,
    source      text NOT NULL,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz,
    records     bigint NOT NULL DEFAULT 0,
    status      text NOT NULL,
    error       text
);
CREATE INDEX connector_runs_source_idx ON connector_runs (source, started_at DESC);
