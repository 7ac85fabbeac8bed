DROP TABLE IF EXISTS catalog_tombstones;
DROP TABLE IF EXISTS catalog_service_at_locations;
DROP TABLE IF EXISTS catalog_services;
DROP TABLE IF EXISTS catalog_locations;
DROP TABLE IF EXISTS catalog_organizations;
DROP TABLE IF EXISTS catalog_source_records;
