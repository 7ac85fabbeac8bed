DROP TABLE connector_snapshot_keys;
ALTER TABLE connector_runs DROP COLUMN read, DROP COLUMN emitted, DROP COLUMN rejected,
    DROP COLUMN deleted, DROP COLUMN full_run, DROP COLUMN trigger;
