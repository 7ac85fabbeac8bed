-- Listings NGOs pushed through the API. external_id is unique across NGOs: an id names one
-- listing, and another NGO asking for it is refused (and audited) rather than answered about it.
-- event_id is the raw event of the last push or delete, by which its dead letter is found;
-- content_hash is what the catalog will hold once that push is applied.
CREATE TABLE listings (
    external_id     text PRIMARY KEY,
    client_id       text NOT NULL,
    source          text NOT NULL,
    organization_id text NOT NULL, -- the local id of the organization in the pushed documents
    op              text NOT NULL CHECK (op IN ('upsert', 'delete')),
    event_id        text NOT NULL,
    content_hash    text NOT NULL DEFAULT '',
    accepted_at     timestamptz NOT NULL,
    created_at      timestamptz NOT NULL
);
CREATE INDEX listings_client_idx ON listings (client_id, external_id);

-- HSDS feeds NGOs registered; each runs as the hsds source named source.
CREATE TABLE listing_feeds (
    id         text PRIMARY KEY,
    client_id  text NOT NULL,
    source     text NOT NULL UNIQUE,
    url        text NOT NULL,
    schedule   text NOT NULL,
    created_at timestamptz NOT NULL,
    UNIQUE (client_id, url)
);
