DROP TABLE connector_lease;
