CREATE INDEX eligibility_residents_source_idx ON eligibility_residents (source);
ALTER TABLE eligibility_residents
    DROP CONSTRAINT eligibility_residents_pseudonym_check,
    ADD CONSTRAINT eligibility_residents_pseudonym_check CHECK (pseudonym ~ '^[0-9a-f]{64}$'),
    DROP CONSTRAINT eligibility_residents_facts_check,
    ALTER COLUMN facts TYPE jsonb USING facts::jsonb,
    ADD CONSTRAINT eligibility_residents_facts_check CHECK (jsonb_typeof(facts) = 'object'),
    ALTER COLUMN pseudonym TYPE text COLLATE "default";

CREATE TABLE eligibility_decisions (
    pseudonym   text NOT NULL REFERENCES eligibility_residents (pseudonym) ON DELETE CASCADE,
    rule_id     text NOT NULL,
    eligible    boolean NOT NULL,
    computed_on date NOT NULL,
    PRIMARY KEY (pseudonym, rule_id)
);
CREATE INDEX eligibility_decisions_rule_idx ON eligibility_decisions (rule_id) WHERE eligible;

-- A decided resident gets a decision for every rule the versions table knows.
INSERT INTO eligibility_decisions (pseudonym, rule_id, eligible, computed_on)
SELECT r.pseudonym, v.rule_id, v.rule_id = ANY (r.eligible_rules), r.decided_on
FROM eligibility_residents r CROSS JOIN eligibility_rule_versions v
WHERE r.decided_under IS NOT NULL;

DROP INDEX eligibility_residents_undecided_idx;
ALTER TABLE eligibility_residents
    DROP COLUMN eligible_rules,
    DROP COLUMN decided_on,
    DROP COLUMN decided_under;
