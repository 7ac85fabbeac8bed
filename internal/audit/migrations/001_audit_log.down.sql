DROP TABLE audit_log;
DROP TABLE audit_head;
DROP FUNCTION audit_log_append_only();
