DROP TABLE case_counters;
DROP TABLE case_events;
DROP TABLE cases;
