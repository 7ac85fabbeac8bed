package attest_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"

	"socialhub/internal/attest"
	"socialhub/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

type testBundle struct {
	db   *pgtest.DB
	keys *attest.Keys
	now  *time.Time
}

func setup(t testing.TB) testBundle {
	t.Helper()
	db := pgtest.NewDB(t, attest.Migrations())
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	b := testBundle{db: db, now: &now}
	keys, err := attest.New(db.Pool, attest.Options{MasterKey: make([]byte, 32), Issuer: "https://hub.test",
		TTL: 24 * time.Hour, RotateEvery: 7 * 24 * time.Hour, Now: func() time.Time { return *b.now }})
	require.NoError(t, err)
	b.keys = keys
	require.NoError(t, keys.Ensure(context.Background()))
	return b
}

func claims() attest.Claims {
	return attest.Claims{Audience: "client-1", Subject: strings.Repeat("ab", 32), QuestionHash: strings.Repeat("0", 64),
		SubjectFound: true, Answers: []attest.Answer{{Claim: "pension_status", Answer: true, AsOf: "2025-05-30"}},
		Purpose: "subsidy", CaseID: "дело-1", AuditSeq: 7}
}

func TestSignVerifyAcrossRotation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	old, signed, err := b.keys.Sign(ctx, claims())
	require.NoError(t, err)
	require.Equal(t, "https://hub.test", signed.Issuer)
	require.Equal(t, signed.IssuedAt+24*3600, signed.Expiry)

	// Ensure within RotateEvery keeps the key; past it, rotates.
	require.NoError(t, b.keys.Ensure(ctx))
	set, err := b.keys.JWKS(ctx)
	require.NoError(t, err)
	require.Len(t, set.Keys, 1)
	*b.now = b.now.Add(8 * 24 * time.Hour)
	require.NoError(t, b.keys.Ensure(ctx))
	*b.now = b.now.Add(-8*24*time.Hour + time.Hour) // the old attestation is still valid
	set, err = b.keys.JWKS(ctx)
	require.NoError(t, err)
	require.Len(t, set.Keys, 2, "the retired key stays published")

	fresh, freshClaims, err := b.keys.Sign(ctx, claims())
	require.NoError(t, err)
	require.NotEqual(t, signed.KeyID, freshClaims.KeyID)

	// Both verify offline against the published set, as a client would fetch it.
	raw, err := json.Marshal(set)
	require.NoError(t, err)
	var published jose.JSONWebKeySet
	require.NoError(t, json.Unmarshal(raw, &published))
	for _, tok := range []string{old, fresh} {
		got, err := attest.Verify(tok, published, attest.VerifyOptions{Issuer: "https://hub.test", Audience: "client-1", Now: *b.now})
		require.NoError(t, err)
		require.Equal(t, int64(7), got.AuditSeq)
		require.Equal(t, "дело-1", got.CaseID)
	}
	_, err = b.keys.Verify(ctx, old)
	require.NoError(t, err)

	// For another audience or issuer it does not.
	_, err = attest.Verify(old, published, attest.VerifyOptions{Audience: "client-2", Now: *b.now})
	require.ErrorIs(t, err, attest.ErrInvalid)

	// Once every attestation of the old key has expired, the key leaves the set.
	*b.now = b.now.Add(30 * 24 * time.Hour)
	set, err = b.keys.JWKS(ctx)
	require.NoError(t, err)
	require.Len(t, set.Keys, 1)
	_, err = attest.Verify(old, set, attest.VerifyOptions{Now: *b.now})
	require.ErrorIs(t, err, attest.ErrInvalid)
}

func TestTamperedAttestationIsRejected(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	tok, _, err := b.keys.Sign(ctx, claims())
	require.NoError(t, err)
	set, err := b.keys.JWKS(ctx)
	require.NoError(t, err)
	parts := strings.Split(tok, ".")
	require.Len(t, parts, 3)
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	require.NoError(t, err)
	forged := strings.Replace(string(payload), `"answer":true`, `"answer":false`, 1)
	require.NotEqual(t, string(payload), forged)

	for name, bad := range map[string]string{
		"changed answer":  parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(forged)) + "." + parts[2],
		"other signature": parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(make([]byte, 64)),
		"no signature":    parts[0] + "." + parts[1] + ".",
		"alg none":        base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","kid":"x"}`)) + "." + parts[1] + ".",
		"garbage":         "not a token",
		"unknown key":     base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"EdDSA","kid":"other"}`)) + "." + parts[1] + "." + parts[2],
	} {
		_, err := attest.Verify(bad, set, attest.VerifyOptions{Now: *b.now})
		require.ErrorIs(t, err, attest.ErrInvalid, name)
	}
	*b.now = b.now.Add(48 * time.Hour)
	_, err = attest.Verify(tok, set, attest.VerifyOptions{Now: *b.now})
	require.ErrorContains(t, err, "expired")
}

func TestKeysNeedTheirMasterKey(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	other := make([]byte, 32)
	other[0] = 1
	keys, err := attest.New(b.db.Pool, attest.Options{MasterKey: other})
	require.NoError(t, err)
	_, _, err = keys.Sign(ctx, claims())
	require.ErrorIs(t, err, attest.ErrMasterKey)
	var sealed []byte
	require.NoError(t, b.db.Pool.QueryRow(ctx, `SELECT sealed_key FROM attest_keys`).Scan(&sealed))
	require.Len(t, sealed, 12+32+16, "nonce, seed, tag: no private key in the clear")
}

func TestMasterKey(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	k1, err := attest.MasterKey(func(string) string { return "" }, dir)
	require.NoError(t, err)
	require.Len(t, k1, 32)
	k2, err := attest.MasterKey(nil, dir)
	require.NoError(t, err)
	require.Equal(t, k1, k2, "the data directory keeps the key")
	st, err := os.Stat(filepath.Join(dir, "attest.key"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())

	env := func(string) string { return strings.Repeat("ab", 32) }
	k3, err := attest.MasterKey(env, dir)
	require.NoError(t, err)
	require.Equal(t, byte(0xab), k3[0])
	_, err = attest.MasterKey(func(string) string { return "short" }, "")
	require.ErrorIs(t, err, attest.ErrMasterKey)
	_, err = attest.MasterKey(nil, "")
	require.ErrorIs(t, err, attest.ErrMasterKey)
}

func TestLoadJWKSFromFile(t *testing.T) {
	t.Parallel()
	b := setup(t)
	set, err := b.keys.JWKS(context.Background())
	require.NoError(t, err)
	raw, err := json.Marshal(set)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "jwks.json")
	require.NoError(t, os.WriteFile(path, raw, 0o644))
	got, err := attest.LoadJWKS(context.Background(), path, nil)
	require.NoError(t, err)
	require.Len(t, got.Keys, 1)
}
