-- Attestation signing keys (Ed25519). The private key is sealed (AES-256-GCM) under a master key
-- kept outside the database; the public key is published until publish_until.
CREATE TABLE attest_keys (
    kid           text PRIMARY KEY,
    public_key    bytea NOT NULL CHECK (length(public_key) = 32),
    sealed_key    bytea NOT NULL,
    created_at    timestamptz NOT NULL,
    -- Set when a newer key took over; the key then signs nothing more.
    retired_at    timestamptz,
    -- Past this time no attestation signed with the key is valid, so it leaves the JWKS.
    publish_until timestamptz
);
CREATE UNIQUE INDEX attest_keys_one_current_idx ON attest_keys ((true)) WHERE retired_at IS NULL;
