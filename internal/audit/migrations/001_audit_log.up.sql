-- The audit log: one row per lookup, eligibility query and refused request, chained by hashes.
-- No column holds a national id: subjects are pseudonyms.
CREATE TABLE audit_log (
    seq         bigint PRIMARY KEY CHECK (seq > 0),
    at          timestamptz NOT NULL,
    client_id   text NOT NULL,
    client_name text NOT NULL,
    client_kind text NOT NULL,
    action      text NOT NULL,
    outcome     text NOT NULL,
    status      integer NOT NULL,
    subject     text NOT NULL,
    purpose     text NOT NULL,
    case_id     text NOT NULL,
    -- json, not jsonb: the hash covers the exact text written, which jsonb would re-format.
    detail      json NOT NULL,
    prev_hash   text NOT NULL,
    hash        text NOT NULL
);
CREATE INDEX audit_log_subject_idx ON audit_log (subject, seq) WHERE subject <> '';

-- The chain's head: appends lock this one row, which serializes them across connections and
-- replicas, and keeps the next sequence number without gaps.
CREATE TABLE audit_head (
    id   boolean PRIMARY KEY DEFAULT true CHECK (id),
    seq  bigint NOT NULL,
    hash text NOT NULL
);
INSERT INTO audit_head (seq, hash) VALUES (0, repeat('0', 64));

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

-- Binds every role but the owner and superusers (see doc.go); harmless when the hub's role is one.
REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM PUBLIC;
DO $$
BEGIN
    EXECUTE format('REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM %I', current_user);
END;
$$;
