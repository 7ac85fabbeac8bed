-- API clients. The token is kept only as its SHA-256 (see doc.go).
CREATE TABLE api_clients (
    id           text PRIMARY KEY,
    name         text NOT NULL CHECK (name <> ''),
    kind         text NOT NULL CHECK (kind IN ('department', 'ngo', 'app', 'operator', 'admin')),
    token_sha256 bytea NOT NULL UNIQUE CHECK (length(token_sha256) = 32),
    scopes       text[] NOT NULL,
    purposes     text[] NOT NULL,
    -- Requests per second and burst of the client's rate limit.
    rate         double precision NOT NULL CHECK (rate > 0),
    burst        integer NOT NULL CHECK (burst > 0),
    created_at   timestamptz NOT NULL,
    revoked_at   timestamptz
);
