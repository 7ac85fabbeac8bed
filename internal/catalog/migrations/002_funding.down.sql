DROP TABLE IF EXISTS catalog_funding;
DELETE FROM catalog_source_records WHERE entity_type <> 'service';
ALTER TABLE catalog_source_records DROP CONSTRAINT IF EXISTS catalog_source_records_target_check;
DROP INDEX IF EXISTS catalog_source_records_organization_idx;
ALTER TABLE catalog_source_records
    DROP COLUMN IF EXISTS organization_id,
    DROP COLUMN IF EXISTS entity_type,
    ALTER COLUMN service_id SET NOT NULL;
