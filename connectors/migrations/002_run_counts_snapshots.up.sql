-- What each run did, kept current while it runs (a progress bar reads it) and final at its end.
ALTER TABLE connector_runs
    ADD COLUMN read     bigint NOT NULL DEFAULT 0,
    ADD COLUMN emitted  bigint NOT NULL DEFAULT 0,
    ADD COLUMN rejected bigint NOT NULL DEFAULT 0,
    ADD COLUMN deleted  bigint NOT NULL DEFAULT 0,
    ADD COLUMN full_run boolean NOT NULL DEFAULT false,
    ADD COLUMN trigger  text NOT NULL DEFAULT 'schedule';

-- The records each snapshot source last listed, and in which snapshot. Written in the same
-- transaction as the checkpoint; a completed snapshot deletes the keys (and the records) that an
-- earlier snapshot held and it does not.
CREATE TABLE connector_snapshot_keys (
    source      text NOT NULL,
    external_id text NOT NULL,
    entity_type text NOT NULL,
    snapshot    text NOT NULL,
    PRIMARY KEY (source, external_id)
);
