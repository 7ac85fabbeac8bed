DROP TABLE eligibility_rule_versions;
DROP TABLE eligibility_decisions;
