-- Applications and their case files. No column holds a national id: residents are pseudonyms.
CREATE TABLE cases (
    id            uuid PRIMARY KEY,
    -- Human-friendly, e.g. 2026-000123: the year of submission and its sequence (case_counters).
    case_number   text NOT NULL UNIQUE,
    pseudonym     text NOT NULL CHECK (pseudonym ~ '^[0-9a-f]{64}$'),
    service_id    text NOT NULL,
    service_name  text NOT NULL,
    categories    text[] NOT NULL,
    district      text NOT NULL,
    okrug         text NOT NULL,
    -- The organization code of schemas/case_rules.json the case is routed to, and why.
    organization  text NOT NULL,
    routing       jsonb NOT NULL,
    channel       text NOT NULL CHECK (channel IN ('phone', 'web', 'chatbot', 'messenger', 'text_relay')),
    request       text NOT NULL,
    contact       jsonb NOT NULL,
    -- The eligibility verdict at submission, with the rules that did not hold.
    eligibility   jsonb NOT NULL,
    filed_by      text NOT NULL,
    filed_by_name text NOT NULL,
    purpose       text NOT NULL,
    -- The current status: the latest of case_events by event time.
    status        text NOT NULL,
    status_at     timestamptz NOT NULL,
    -- When the case becomes overdue at its status; NULL for a status without a deadline.
    deadline_at   timestamptz,
    -- One more for every history entry: the version of the change events.
    version       bigint NOT NULL,
    submitted_at  timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);
CREATE INDEX cases_organization_idx ON cases (organization, submitted_at);
CREATE INDEX cases_pseudonym_idx ON cases (pseudonym);
CREATE INDEX cases_deadline_idx ON cases (deadline_at) WHERE deadline_at IS NOT NULL;

-- The status history. The department's own event id makes a repeated event a no-op; seq is the
-- arrival order, which breaks ties between events of the same time.
CREATE TABLE case_events (
    case_id     uuid NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
    event_id    text NOT NULL CHECK (event_id <> ''),
    seq         bigserial NOT NULL,
    status      text NOT NULL,
    occurred_at timestamptz NOT NULL,
    actor       text NOT NULL,
    reason      text NOT NULL DEFAULT '',
    -- Who reported it: the API client's name (push) or the connector source (pull).
    reported_by text NOT NULL,
    received_at timestamptz NOT NULL,
    PRIMARY KEY (case_id, event_id)
);
CREATE INDEX case_events_order_idx ON case_events (case_id, occurred_at, seq);

-- The last case number handed out per year; the row lock serializes submissions of one year.
CREATE TABLE case_counters (
    year integer PRIMARY KEY,
    last bigint NOT NULL
);
