-- Organizations as records of their own (grant lists), and the grants they received (HSDS funding).

-- A source record is now a service document (entity_type 'service', service_id set) or an
-- organization document (entity_type 'organization', organization_id set). A delete finds what
-- the record was from here, whatever its event says.
ALTER TABLE catalog_source_records
    ADD COLUMN entity_type text NOT NULL DEFAULT 'service',
    ADD COLUMN organization_id uuid,
    ALTER COLUMN service_id DROP NOT NULL;
ALTER TABLE catalog_source_records ADD CONSTRAINT catalog_source_records_target_check CHECK (
    (entity_type = 'service' AND service_id IS NOT NULL) OR
    (entity_type = 'organization' AND organization_id IS NOT NULL));
CREATE INDEX catalog_source_records_organization_idx ON catalog_source_records (organization_id)
    WHERE organization_id IS NOT NULL;

-- One row per grant, keyed by its canonical id. source_record is the external id of the source
-- record that lists it: when that record changes or goes, the grants it no longer lists go too.
CREATE TABLE catalog_funding (
    id              uuid PRIMARY KEY,
    source          text NOT NULL,
    external_id     text NOT NULL,
    source_record   text NOT NULL,
    organization_id uuid NOT NULL REFERENCES catalog_organizations (id),
    doc             jsonb NOT NULL,
    content_hash    text NOT NULL,
    version         bigint NOT NULL CHECK (version > 0),
    created_at      timestamptz NOT NULL,
    last_modified   timestamptz NOT NULL
);
CREATE INDEX catalog_funding_organization_idx ON catalog_funding (organization_id);
CREATE INDEX catalog_funding_record_idx ON catalog_funding (source, source_record);
