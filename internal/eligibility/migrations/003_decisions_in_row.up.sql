-- Decisions move into the resident's own row: one row write per resident instead of one per rule
-- (six per resident, each with its foreign-key check and two index entries keyed by a 64-character
-- text), which made the decisions table six times the residents' and its index far larger than
-- PostgreSQL's cache.
--   eligible_rules: the ids of the rules the resident is eligible under (NULL: not decided);
--   decided_on:     the day they were decided (rules reading age go stale at midnight);
--   decided_under:  the digest of the rule set they were decided under (ruleSetDigest in Go); a resident
--                   decided under other rules is decided again on the spot when read.
ALTER TABLE eligibility_residents
    ADD COLUMN eligible_rules text[],
    ADD COLUMN decided_on     date,
    ADD COLUMN decided_under  bigint,
    -- Pseudonyms are hex: byte order is their order, and comparing bytes is far cheaper than the
    -- database locale's collation on every index probe.
    ALTER COLUMN pseudonym TYPE text COLLATE "C",
    -- The facts were validated on their way in and are read whole: json keeps them as written
    -- instead of building jsonb's binary form on every write and rendering it on every read.
    DROP CONSTRAINT eligibility_residents_facts_check,
    ALTER COLUMN facts TYPE json USING facts::json,
    ADD CONSTRAINT eligibility_residents_facts_check CHECK (json_typeof(facts) = 'object'),
    -- The same rule as before (64 lowercase hex digits), without a regular expression on every
    -- row written, which cost as much CPU as the rest of the upsert.
    DROP CONSTRAINT eligibility_residents_pseudonym_check,
    ADD CONSTRAINT eligibility_residents_pseudonym_check
        CHECK (octet_length(decode(pseudonym, 'hex')) = 32 AND pseudonym = lower(pseudonym));

-- The stored decisions of a resident are kept when there is one for every rule the versions table
-- knows (what they were computed under); the rest are left undecided, for Refresh to decide.
WITH rule_set AS (
    SELECT count(*) AS rules,
           ('x' || left(encode(sha256(convert_to(coalesce(string_agg(rule_id || ':' || hash, ',' ORDER BY rule_id COLLATE "C"), ''), 'UTF8')), 'hex'), 16))::bit(64)::bigint AS digest
    FROM eligibility_rule_versions
), decided AS (
    SELECT d.pseudonym, count(*) AS rules, min(d.computed_on) AS decided_on,
           coalesce(array_agg(d.rule_id ORDER BY d.rule_id COLLATE "C") FILTER (WHERE d.eligible), '{}') AS eligible_rules
    FROM eligibility_decisions d JOIN eligibility_rule_versions v ON v.rule_id = d.rule_id
    GROUP BY d.pseudonym
)
UPDATE eligibility_residents r
SET eligible_rules = decided.eligible_rules, decided_on = decided.decided_on, decided_under = rule_set.digest
FROM decided, rule_set
WHERE r.pseudonym = decided.pseudonym AND decided.rules = rule_set.rules;

DROP TABLE eligibility_decisions;

-- Refresh finds the residents nobody decided yet without reading the table.
CREATE INDEX eligibility_residents_undecided_idx ON eligibility_residents (pseudonym) WHERE decided_under IS NULL;

-- No query reads residents by source (a delete names the pseudonym): the index only cost writes.
DROP INDEX eligibility_residents_source_idx;
