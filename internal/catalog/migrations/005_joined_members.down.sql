DROP INDEX IF EXISTS catalog_members_joined_idx;
