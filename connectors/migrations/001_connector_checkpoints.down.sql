DROP TABLE connector_runs;
DROP TABLE connector_checkpoints;
