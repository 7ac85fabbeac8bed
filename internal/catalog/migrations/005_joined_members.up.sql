-- The members that joined a canonical entity other than their own (merged ones): few, so that
-- finding the sources of each candidate's canonical service costs an index probe that mostly
-- finds nothing, instead of a visit to every candidate's cluster.
CREATE INDEX catalog_members_joined_idx ON catalog_members (canonical_id) WHERE canonical_id <> member_id;
