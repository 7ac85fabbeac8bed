-- Entity resolution: which source-level entities (members) make up each canonical entity, the ids
-- that now redirect to another, the merges that can be undone, and the review queue.

-- One row per source-level entity: its own id (CanonicalID of its source and local id), the
-- canonical entity it belongs to, its canonical doc as its source gave it (survivorship picks the
-- canonical fields from these), its match features and the blocking keys it is found by.
CREATE TABLE catalog_members (
    member_id    uuid PRIMARY KEY,
    entity_type  text NOT NULL,
    source       text NOT NULL,
    local_id     text NOT NULL,
    canonical_id uuid NOT NULL,
    doc          jsonb NOT NULL,
    features     jsonb NOT NULL,
    keys         text[] NOT NULL,
    seen_at      timestamptz NOT NULL
);
CREATE INDEX catalog_members_canonical_idx ON catalog_members (canonical_id);
CREATE INDEX catalog_members_keys_idx ON catalog_members USING gin (keys);

-- A canonical id that merged into another answers with the other (HTTP 301).
CREATE TABLE catalog_redirects (
    old_id      uuid PRIMARY KEY,
    new_id      uuid NOT NULL,
    entity_type text NOT NULL,
    merged_at   timestamptz NOT NULL
);
CREATE INDEX catalog_redirects_new_idx ON catalog_redirects (new_id);

-- Every merge, automatic or decided, with the members it moved: a split moves exactly those back
-- under the loser's id.
CREATE TABLE catalog_merges (
    id          bigserial PRIMARY KEY,
    entity_type text NOT NULL,
    winner      uuid NOT NULL,
    loser       uuid NOT NULL,
    members     uuid[] NOT NULL,
    how         text NOT NULL CHECK (how IN ('auto', 'review')),
    score       double precision NOT NULL,
    matched     text[] NOT NULL DEFAULT '{}',
    merged_at   timestamptz NOT NULL,
    undone_at   timestamptz
);
CREATE INDEX catalog_merges_loser_idx ON catalog_merges (loser) WHERE undone_at IS NULL;

-- Pairs a person must look at: a member whose best candidate scored between the thresholds.
-- (member_id, candidate_id) is unique, so a pair is never asked twice; decided items stay as the
-- memory of the decision.
CREATE TABLE catalog_review (
    id           bigserial PRIMARY KEY,
    entity_type  text NOT NULL,
    member_id    uuid NOT NULL,
    candidate_id uuid NOT NULL, -- the candidate's member id
    score        double precision NOT NULL,
    matched      text[] NOT NULL,
    status       text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'merged', 'split', 'dismissed')),
    created_at   timestamptz NOT NULL,
    decided_at   timestamptz,
    UNIQUE (member_id, candidate_id)
);
CREATE INDEX catalog_review_open_idx ON catalog_review (id) WHERE status = 'open';

-- Pairs decided to be different things (a dismissed review item, a split): never merged again.
CREATE TABLE catalog_apart (
    a uuid NOT NULL,
    b uuid NOT NULL,
    decided_at timestamptz NOT NULL,
    PRIMARY KEY (a, b),
    CHECK (a < b)
);
