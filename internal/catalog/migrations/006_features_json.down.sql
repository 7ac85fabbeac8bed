ALTER TABLE catalog_members ALTER COLUMN features TYPE jsonb USING features::jsonb;
