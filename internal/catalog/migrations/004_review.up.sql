-- Resolution at speed, and the memory of reviewers' decisions.

-- Candidates are probed key by key with a LIMIT on every batch: the pending list of a GIN index
-- with fastupdate would be scanned whole by every probe, so entries go into the tree at once.
ALTER INDEX catalog_members_keys_idx SET (fastupdate = off);

-- Merges a reviewer decided: the pair is never proposed again, and a member that arrives later
-- under one of these ids finds its place through its members table row.
ALTER TABLE catalog_review ADD COLUMN decided_by text NOT NULL DEFAULT '';
