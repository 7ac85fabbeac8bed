-- Webhook subscriptions: a URL, a filter and a signing secret per subscriber (owner).
CREATE TABLE webhook_subscriptions (
    id                   uuid PRIMARY KEY,
    owner                text NOT NULL,
    url                  text NOT NULL,
    types                text[] NOT NULL DEFAULT '{}',
    district             text,
    secret               text NOT NULL,
    -- After a rotation the previous secret signs too until old_secret_until.
    old_secret           text,
    old_secret_until     timestamptz,
    status               text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'paused')),
    paused_at            timestamptz,
    pause_reason         text,
    -- The pub_seq up to which the feed has been fanned out into webhook_deliveries.
    fanned_through       bigint NOT NULL,
    consecutive_failures integer NOT NULL DEFAULT 0,
    failing_since        timestamptz,
    -- While a receiver fails, the whole subscription backs off: one probe per interval, not one
    -- per pending entity.
    retry_at             timestamptz,
    last_attempt_at      timestamptz,
    last_success_at      timestamptz,
    last_error           text,
    delivered            bigint NOT NULL DEFAULT 0,
    created_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_subscriptions_owner_idx ON webhook_subscriptions (owner, created_at);

-- Pending deliveries; a row is deleted once the receiver acknowledged it. The head of each
-- (subscription, entity) queue — the lowest pub_seq — is the only one that may be attempted, which
-- keeps per-entity order.
CREATE TABLE webhook_deliveries (
    subscription_id uuid NOT NULL REFERENCES webhook_subscriptions (id) ON DELETE CASCADE,
    pub_seq         bigint NOT NULL,
    entity_id       text NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    next_at         timestamptz NOT NULL DEFAULT now(),
    lease_until     timestamptz,
    last_error      text,
    PRIMARY KEY (subscription_id, pub_seq)
);
CREATE INDEX webhook_deliveries_entity_idx ON webhook_deliveries (subscription_id, entity_id, pub_seq);
CREATE INDEX webhook_deliveries_pub_seq_idx ON webhook_deliveries (pub_seq);
