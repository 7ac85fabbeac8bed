-- Who runs the connectors. Several processes may have the connectors role; the one holding this
-- lease runs them, renewing it; when it dies, the lease expires and another takes over. The epoch
-- grows with every change of holder, fencing a holder that lost it without noticing.
CREATE TABLE connector_lease (
    name       text PRIMARY KEY,
    holder     text NOT NULL,
    epoch      bigint NOT NULL,
    expires_at timestamptz NOT NULL
);
