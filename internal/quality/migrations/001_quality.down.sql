DROP TABLE quality_positions;
DROP TABLE quality_fields;
DROP TABLE quality_sources;
