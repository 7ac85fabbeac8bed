-- Computed eligibility: one row per resident and rule, written in the resolve transaction for the
-- residents it changes, and for every resident when a rule changes (Store.Refresh).
CREATE TABLE eligibility_decisions (
    pseudonym   text NOT NULL REFERENCES eligibility_residents (pseudonym) ON DELETE CASCADE,
    rule_id     text NOT NULL,
    eligible    boolean NOT NULL,
    -- The date the decision was made: rules reading age go stale at midnight.
    computed_on date NOT NULL,
    PRIMARY KEY (pseudonym, rule_id)
);
CREATE INDEX eligibility_decisions_rule_idx ON eligibility_decisions (rule_id) WHERE eligible;

-- The rules the decisions were computed under: a rule whose hash differs is recomputed for all.
CREATE TABLE eligibility_rule_versions (
    rule_id     text PRIMARY KEY,
    hash        text NOT NULL,
    computed_on date NOT NULL
);
