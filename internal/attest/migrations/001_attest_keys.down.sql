DROP TABLE attest_keys;
