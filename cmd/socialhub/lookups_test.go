package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"socialhub/internal/attest"
	"socialhub/internal/audit"
	"socialhub/internal/clients"
	"socialhub/internal/pgtest"
)

func TestClientsCommands(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t) // the command applies the migrations it needs
	env := func(k string) string {
		if k == "DATABASE_URL" {
			return db.URL
		}
		return ""
	}
	ctx := context.Background()
	var out, errOut bytes.Buffer
	require.NoError(t, cmdClients(ctx, []string{"create", "-name", "УСЗН ЮВАО", "-kind", "department",
		"-scopes", "lookup:pension_status, lookup:registered_address", "-purposes", "subsidy"}, &out, &errOut, env))
	token := regexp.MustCompile(`shub_[A-Za-z0-9_-]+`).FindString(out.String())
	require.NotEmpty(t, token, out.String())
	id := regexp.MustCompile(`client ([0-9a-f-]{36}) created`).FindStringSubmatch(out.String())[1]

	_, err := clients.NewStore(db.Pool).Authenticate(ctx, token)
	require.NoError(t, err)

	err = cmdClients(ctx, []string{"create", "-name", "Фонд", "-kind", "ngo", "-scopes", "lookup:pension_status"}, &out, &errOut, env)
	require.ErrorIs(t, err, clients.ErrInvalidClient)

	out.Reset()
	require.NoError(t, cmdClients(ctx, []string{"list"}, &out, &errOut, env))
	require.Contains(t, out.String(), "УСЗН ЮВАО")
	require.NotContains(t, out.String(), token)

	out.Reset()
	require.NoError(t, cmdClients(ctx, []string{"revoke", id}, &out, &errOut, env))
	_, err = clients.NewStore(db.Pool).Authenticate(ctx, token)
	require.ErrorIs(t, err, clients.ErrUnauthorized)
	require.Error(t, cmdClients(ctx, []string{"nonsense"}, &out, &errOut, env))
}

func TestAuditVerifyCommand(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t, audit.Migrations())
	env := func(k string) string {
		if k == "DATABASE_URL" {
			return db.URL
		}
		return ""
	}
	ctx := context.Background()
	log := audit.New(db.Pool)
	for range 3 {
		_, err := log.Append(ctx, audit.Entry{Action: audit.ActionLookup, Outcome: audit.OutcomeAnswered, Status: 200})
		require.NoError(t, err)
	}
	var out, errOut bytes.Buffer
	require.NoError(t, cmdAudit(ctx, []string{"verify"}, &out, &errOut, env))
	require.Contains(t, out.String(), "3 rows")

	tx, err := db.Pool.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `ALTER TABLE audit_log DISABLE TRIGGER USER; UPDATE audit_log SET status = 403 WHERE seq = 2; ALTER TABLE audit_log ENABLE TRIGGER USER`)
	require.NoError(t, err)
	require.NoError(t, tx.Commit(ctx))
	err = cmdAudit(ctx, []string{"verify"}, &out, &errOut, env)
	require.ErrorIs(t, err, audit.ErrBroken)
	require.ErrorContains(t, err, "row 2")
}

func TestVerifyCommand(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t, attest.Migrations())
	ctx := context.Background()
	keys, err := attest.New(db.Pool, attest.Options{MasterKey: make([]byte, 32), Issuer: "https://hub.test", TTL: time.Hour})
	require.NoError(t, err)
	require.NoError(t, keys.Ensure(ctx))
	token, _, err := keys.Sign(ctx, attest.Claims{Audience: "c1", Subject: strings.Repeat("a", 64), CaseID: "дело-1", AuditSeq: 3})
	require.NoError(t, err)
	_, err = keys.Rotate(ctx)
	require.NoError(t, err)
	set, err := keys.JWKS(ctx)
	require.NoError(t, err)
	raw, err := json.Marshal(set)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "jwks.json")
	require.NoError(t, os.WriteFile(path, raw, 0o644))
	env := func(string) string { return "" }

	var out, errOut bytes.Buffer
	require.NoError(t, verifyAttestation(ctx, []string{"-jwks", path, "-audience", "c1", "-"}, strings.NewReader(token+"\n"), &out, &errOut, env))
	require.Contains(t, out.String(), "attestation valid")
	require.Contains(t, out.String(), "дело-1")
	err = verifyAttestation(ctx, []string{"-jwks", path, "-audience", "c2", token}, nil, &out, &errOut, env)
	require.ErrorIs(t, err, attest.ErrInvalid)
	// A character in the middle of the signature: the last one also carries padding bits.
	at := len(token) - 20
	flipped := "A"
	if token[at] == 'A' {
		flipped = "B"
	}
	err = verifyAttestation(ctx, []string{"-jwks", path, token[:at] + flipped + token[at+1:]}, nil, &out, &errOut, env)
	require.ErrorIs(t, err, attest.ErrInvalid)
}
