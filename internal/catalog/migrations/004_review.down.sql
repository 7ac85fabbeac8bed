ALTER TABLE catalog_review DROP COLUMN decided_by;
ALTER INDEX catalog_members_keys_idx SET (fastupdate = on);
