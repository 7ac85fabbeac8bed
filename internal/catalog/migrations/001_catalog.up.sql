-- The canonical catalog: HSDS 3.0 entities with canonical (UUIDv5) ids. Each entity row keeps its own
-- canonical fields in doc (nested objects such as phones or addresses included, other top-level
-- entities not), the hash of that doc (without provenance metadata) and its version.

-- One row per source record that reached the catalog; content_hash makes replays no-ops.
CREATE TABLE catalog_source_records (
    source       text NOT NULL,
    external_id  text NOT NULL,
    content_hash text NOT NULL,
    service_id   uuid NOT NULL,
    seen_at      timestamptz NOT NULL,
    PRIMARY KEY (source, external_id)
);

CREATE TABLE catalog_organizations (
    id            uuid PRIMARY KEY,
    source        text NOT NULL,
    external_id   text NOT NULL,
    doc           jsonb NOT NULL,
    content_hash  text NOT NULL,
    version       bigint NOT NULL CHECK (version > 0),
    created_at    timestamptz NOT NULL,
    last_modified timestamptz NOT NULL,
    name          text GENERATED ALWAYS AS (doc->>'name') STORED,
    search        tsvector GENERATED ALWAYS AS (to_tsvector('russian'::regconfig,
                      coalesce(doc->>'name', '') || ' ' || coalesce(doc->>'alternate_name', '') || ' ' ||
                      coalesce(doc->>'description', ''))) STORED
);
CREATE INDEX catalog_organizations_name_idx ON catalog_organizations (name, id);
CREATE INDEX catalog_organizations_modified_idx ON catalog_organizations (last_modified);
CREATE INDEX catalog_organizations_search_idx ON catalog_organizations USING gin (search);

CREATE TABLE catalog_locations (
    id            uuid PRIMARY KEY,
    source        text NOT NULL,
    external_id   text NOT NULL,
    doc           jsonb NOT NULL,
    content_hash  text NOT NULL,
    version       bigint NOT NULL CHECK (version > 0),
    created_at    timestamptz NOT NULL,
    last_modified timestamptz NOT NULL
);

-- org_name and term_names are denormalized so that search needs no join; Apply keeps them current.
CREATE TABLE catalog_services (
    id                uuid PRIMARY KEY,
    source            text NOT NULL,
    external_id       text NOT NULL,
    organization_id   uuid NOT NULL REFERENCES catalog_organizations (id),
    doc               jsonb NOT NULL,
    content_hash      text NOT NULL,
    version           bigint NOT NULL CHECK (version > 0),
    created_at        timestamptz NOT NULL,
    last_modified     timestamptz NOT NULL,
    taxonomy_term_ids text[] NOT NULL DEFAULT '{}',
    org_name          text NOT NULL DEFAULT '',
    term_names        text NOT NULL DEFAULT '',
    name              text GENERATED ALWAYS AS (doc->>'name') STORED,
    -- Weighted so that search ranks a service by its own name first, then its taxonomy terms,
    -- then its description, and last the name of the organization that provides it.
    search            tsvector GENERATED ALWAYS AS (
                          setweight(to_tsvector('russian'::regconfig, coalesce(doc->>'name', '')), 'A') ||
                          setweight(to_tsvector('russian'::regconfig, term_names), 'B') ||
                          setweight(to_tsvector('russian'::regconfig, coalesce(doc->>'description', '')), 'C') ||
                          setweight(to_tsvector('russian'::regconfig, org_name), 'D')) STORED
);
CREATE INDEX catalog_services_name_idx ON catalog_services (name, id);
CREATE INDEX catalog_services_organization_idx ON catalog_services (organization_id);
CREATE INDEX catalog_services_modified_idx ON catalog_services (last_modified);
CREATE INDEX catalog_services_terms_idx ON catalog_services USING gin (taxonomy_term_ids);
CREATE INDEX catalog_services_search_idx ON catalog_services USING gin (search);

CREATE TABLE catalog_service_at_locations (
    id            uuid PRIMARY KEY,
    source        text NOT NULL,
    external_id   text NOT NULL,
    service_id    uuid NOT NULL REFERENCES catalog_services (id),
    location_id   uuid NOT NULL REFERENCES catalog_locations (id),
    doc           jsonb NOT NULL,
    content_hash  text NOT NULL,
    version       bigint NOT NULL CHECK (version > 0),
    created_at    timestamptz NOT NULL,
    last_modified timestamptz NOT NULL
);
CREATE INDEX catalog_service_at_locations_service_idx ON catalog_service_at_locations (service_id);
CREATE INDEX catalog_service_at_locations_location_idx ON catalog_service_at_locations (location_id);

-- The last version of deleted entities, so that a re-created entity's version never goes back.
CREATE TABLE catalog_tombstones (
    id         uuid PRIMARY KEY,
    version    bigint NOT NULL,
    deleted_at timestamptz NOT NULL
);
