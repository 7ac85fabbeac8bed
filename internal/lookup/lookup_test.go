package lookup_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"

	"socialhub/internal/attest"
	"socialhub/internal/audit"
	"socialhub/internal/catalog"
	"socialhub/internal/clients"
	"socialhub/internal/eligibility"
	"socialhub/internal/event"
	"socialhub/internal/lookup"
	"socialhub/internal/pgtest"
	"socialhub/internal/pseudonym"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const snils = "112-233-445 95"

type testBundle struct {
	db      *pgtest.DB
	srv     *httptest.Server
	clients *clients.Store
	audit   *audit.Log
	keys    *attest.Keys
	elig    *eligibility.Store
	cat     *catalog.Store
	pseudo  *pseudonym.Pseudonymizer
	logs    *bytes.Buffer
}

func setup(t testing.TB) testBundle {
	t.Helper()
	db := pgtest.NewDB(t, catalog.Migrations(), eligibility.Migrations(), audit.Migrations(), clients.Migrations(), attest.Migrations())
	rules, err := eligibility.DefaultRules()
	require.NoError(t, err)
	p, err := pseudonym.New(bytes.Repeat([]byte{7}, 32))
	require.NoError(t, err)
	keys, err := attest.New(db.Pool, attest.Options{MasterKey: make([]byte, 32), Issuer: "https://hub.test", TTL: time.Hour})
	require.NoError(t, err)
	require.NoError(t, keys.Ensure(context.Background()))
	b := testBundle{db: db, clients: clients.NewStore(db.Pool), audit: audit.New(db.Pool), keys: keys,
		elig: eligibility.NewStore(db.Pool, eligibility.WithRules(rules)), cat: catalog.NewStore(db.Pool), pseudo: p, logs: &bytes.Buffer{}}
	log := slog.New(slog.NewTextHandler(b.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	svc := lookup.New(lookup.Options{Eligibility: b.elig, Catalog: b.cat, Audit: b.audit,
		Guard: clients.NewGuard(b.clients, b.audit, log), Keys: keys, Pseudonyms: p, Logger: log})
	mux := http.NewServeMux()
	svc.Mount(mux)
	b.srv = httptest.NewServer(mux)
	t.Cleanup(b.srv.Close)
	return b
}

func (b testBundle) resident(t testing.TB, snils string, doc string) string {
	t.Helper()
	ctx := context.Background()
	ps, err := b.pseudo.Pseudonym(snils)
	require.NoError(t, err)
	tx, err := b.db.Pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	_, err = b.elig.Apply(ctx, tx, []eligibility.Record{{Source: "residents", Pseudonym: ps, Op: eligibility.OpUpsert,
		Facts: json.RawMessage(strings.Replace(doc, "PSEUDONYM", ps, 1))}})
	require.NoError(t, err)
	require.NoError(t, tx.Commit(ctx))
	return ps
}

const familyDoc = `{"id":"PSEUDONYM","birth_date":"1985-03-01","registered_since":"2010-01-01","disability_group":"none",
	"pensioner":false,"low_income":true,"large_family":false,
	"address":{"address_1":"ул. Братиславская, д. 14, кв. 25","city":"Москва","district":"Марьино","okrug":"ЮВАО"},
	"household":{"members":4,"children_under_18":2,"children_with_disabilities":1}}`

// service puts a service into the catalog and returns its canonical id.
func (b testBundle) service(t testing.TB, name, term string) string {
	t.Helper()
	ctx := context.Background()
	doc, err := json.Marshal(map[string]any{
		"id": name, "name": name, "status": "active",
		"organization": map[string]any{"id": "org-1", "name": "ТЦСО «Марьино»"},
		"attributes":   []any{map[string]any{"id": name + "/attr", "taxonomy_term_id": term}},
	})
	require.NoError(t, err)
	hash, err := event.ContentHash(doc)
	require.NoError(t, err)
	tx, err := b.db.Pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	_, err = b.cat.Apply(ctx, tx, []catalog.Record{{Source: "dept", ExternalID: name, Op: catalog.OpUpsert, Doc: doc, ContentHash: hash, SeenAt: time.Now()}})
	require.NoError(t, err)
	require.NoError(t, tx.Commit(ctx))
	return catalog.CanonicalID(catalog.EntityService, "dept", name).String()
}

func (b testBundle) client(t testing.TB, kind clients.Kind, scopes ...string) (clients.Client, string) {
	t.Helper()
	c, token, err := b.clients.Create(context.Background(), clients.NewClient{Name: "клиент " + string(kind), Kind: kind,
		Scopes: scopes, Purposes: []string{"subsidy", "consultation"}})
	require.NoError(t, err)
	return c, token
}

func (b testBundle) do(t testing.TB, method, path, token string, body any, header ...string) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		require.NoError(t, err)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, b.srv.URL+path, rd)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	return resp.StatusCode, out
}

func lookupBody(claims ...map[string]any) map[string]any {
	return map[string]any{"subject": map[string]any{"national_id": snils}, "claims": claims, "purpose": "subsidy", "case_id": "дело-42"}
}

func TestLookupAnswersAttestsAndAudits(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	ps := b.resident(t, snils, familyDoc)
	respite := b.service(t, "Социальная передышка для родителей", "families-with-children")
	cooling := b.service(t, "Комната прохлады", "cooling-rooms")
	dept, token := b.client(t, clients.KindDepartment, clients.ScopeLookupRegisteredAddress, clients.ScopeLookupHouseholdComposition,
		clients.ScopeLookupLowIncomeStatus, clients.ScopeLookupPensionStatus, clients.ScopeLookupEligibleFor)

	status, out := b.do(t, "POST", "/v1/lookups", token, lookupBody(
		map[string]any{"type": "registered_address", "address": "ул Братиславская д.14 кв 25", "district": "р-н Марьино"},
		map[string]any{"type": "registered_address", "district": "Капотня"},
		map[string]any{"type": "household_composition", "children_with_disabilities": 1},
		map[string]any{"type": "low_income_status"},
		map[string]any{"type": "pension_status"},
		map[string]any{"type": "eligible_for", "service_id": respite},
		map[string]any{"type": "eligible_for", "service_id": cooling},
	))
	require.Equal(t, http.StatusOK, status, out)
	require.Equal(t, ps, out["subject"])
	var got []bool
	for _, a := range out["answers"].([]any) {
		got = append(got, a.(map[string]any)["answer"].(bool))
		require.NotEmpty(t, a.(map[string]any)["as_of"])
	}
	require.Equal(t, []bool{true, false, true, true, false, true, false}, got)
	require.NotContains(t, out, "facts")

	// The attestation verifies against the published JWKS, offline, for this client.
	var set jose.JSONWebKeySet
	resp, err := http.Get(b.srv.URL + "/.well-known/jwks.json")
	require.NoError(t, err)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&set))
	resp.Body.Close()
	c, err := attest.Verify(out["attestation"].(string), set, attest.VerifyOptions{Issuer: "https://hub.test", Audience: dept.ID})
	require.NoError(t, err)
	require.Equal(t, ps, c.Subject)
	require.Equal(t, "дело-42", c.CaseID)
	require.EqualValues(t, out["audit_seq"], c.AuditSeq)
	require.Len(t, c.QuestionHash, 64)
	require.Equal(t, "respite-care", c.Answers[5].Rule)

	// After a rotation the same attestation still verifies, via the API too.
	_, err = b.keys.Rotate(ctx)
	require.NoError(t, err)
	status, v := b.do(t, "POST", "/v1/attestations/verify", "", map[string]any{"attestation": out["attestation"]})
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, true, v["valid"], v)
	resp, err = http.Get(b.srv.URL + "/.well-known/jwks.json")
	require.NoError(t, err)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&set))
	resp.Body.Close()
	require.Len(t, set.Keys, 2)
	_, err = attest.Verify(out["attestation"].(string), set, attest.VerifyOptions{Audience: dept.ID})
	require.NoError(t, err)

	// A tampered one does not.
	tok := out["attestation"].(string)
	parts := strings.Split(tok, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	require.NoError(t, err)
	forged := strings.Replace(string(payload), `"answer":false`, `"answer":true`, 1)
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(forged)) + "." + parts[2]
	status, v = b.do(t, "POST", "/v1/attestations/verify", "", map[string]any{"attestation": tampered})
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, false, v["valid"])

	// The answer is in the audit log, under the pseudonym, and the chain holds.
	e, err := b.audit.Get(ctx, int64(out["audit_seq"].(float64)))
	require.NoError(t, err)
	require.Equal(t, audit.OutcomeAnswered, e.Outcome)
	require.Equal(t, ps, e.Subject)
	require.Equal(t, dept.ID, e.ClientID)
	_, err = b.audit.Verify(ctx)
	require.NoError(t, err)
}

func TestRefusalsAreAudited(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	ps := b.resident(t, snils, familyDoc)
	_, ngo := b.client(t, clients.KindNGO)
	_, dept := b.client(t, clients.KindDepartment, clients.ScopeLookupPensionStatus)
	_, operator := b.client(t, clients.KindOperator, clients.ScopeEligibilityRead, clients.ScopeAuditRead)

	for name, tc := range map[string]struct {
		token  string
		body   map[string]any
		status int
	}{
		"no token":            {"", lookupBody(map[string]any{"type": "pension_status"}), http.StatusUnauthorized},
		"ngo":                 {ngo, lookupBody(map[string]any{"type": "pension_status"}), http.StatusForbidden},
		"operator":            {operator, lookupBody(map[string]any{"type": "pension_status"}), http.StatusForbidden},
		"claim outside scope": {dept, lookupBody(map[string]any{"type": "pension_status"}, map[string]any{"type": "disability_status"}), http.StatusForbidden},
		"undeclared purpose": {dept, func() map[string]any {
			m := lookupBody(map[string]any{"type": "pension_status"})
			m["purpose"] = "marketing"
			return m
		}(), http.StatusForbidden},
	} {
		status, out := b.do(t, "POST", "/v1/lookups", tc.token, tc.body)
		require.Equal(t, tc.status, status, name)
		require.NotEmpty(t, out["error"], name)
	}
	head, err := b.audit.Verify(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 5, head.Rows, "every refusal audited")
	// The refusals past authentication name the resident (as a pseudonym) in the audit log.
	rows, err := b.audit.ForSubject(ctx, ps, 0, 100)
	require.NoError(t, err)
	require.Len(t, rows, 2)

	// Bad input is a 400 with fields, never a 500, and never echoes the national id.
	for name, body := range map[string]any{
		"bad snils":     map[string]any{"subject": map[string]any{"national_id": "112-233-445 96"}, "claims": []any{map[string]any{"type": "pension_status"}}, "purpose": "subsidy", "case_id": "1"},
		"unknown claim": lookupBody(map[string]any{"type": "criminal_record"}),
		"no claims":     lookupBody(),
		"unknown field": map[string]any{"subject": map[string]any{"snils": snils}},
		"bad district":  lookupBody(map[string]any{"type": "pension_status"}, map[string]any{"type": "registered_address", "district": "Атлантида"}),
	} {
		status, out := b.do(t, "POST", "/v1/lookups", dept, body)
		require.Equal(t, http.StatusBadRequest, status, name)
		require.NotEmpty(t, out["fields"], name)
		raw, _ := json.Marshal(out)
		require.NotContains(t, string(raw), "445", name)
	}

	// Eligible services and the access log, under their scopes and purposes.
	status, out := b.do(t, "GET", "/v1/residents/"+ps+"/eligible-services", operator, nil, clients.PurposeHeader, "consultation")
	require.Equal(t, http.StatusOK, status, out)
	status, _ = b.do(t, "GET", "/v1/residents/"+ps+"/eligible-services", operator, nil)
	require.Equal(t, http.StatusForbidden, status, "no purpose")
	status, _ = b.do(t, "GET", "/v1/residents/"+ps+"/access-log", dept, nil, clients.PurposeHeader, "subsidy")
	require.Equal(t, http.StatusForbidden, status, "a department does not read access logs")
	status, out = b.do(t, "GET", "/v1/residents/"+ps+"/access-log?purpose=consultation", operator, nil)
	require.Equal(t, http.StatusOK, status, out)
	entries := out["entries"].([]any)
	require.Equal(t, "access_log", entries[0].(map[string]any)["action"], "the reading itself comes first")
	require.Len(t, entries, 6)
}

func TestNationalIDsNeverStoredOrLogged(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	b.resident(t, snils, familyDoc)
	_, dept := b.client(t, clients.KindDepartment, clients.ScopeLookupPensionStatus, clients.ScopeLookupDisabilityStatus)
	b.do(t, "POST", "/v1/lookups", dept, lookupBody(map[string]any{"type": "pension_status"}))
	b.do(t, "POST", "/v1/lookups", dept, lookupBody(map[string]any{"type": "pension_status"}, map[string]any{"type": "low_income_status"}))
	b.do(t, "POST", "/v1/lookups", dept, map[string]any{"subject": map[string]any{"national_id": "11223344595"}, "claims": []any{map[string]any{"type": "pension_status"}}, "purpose": "x", "case_id": "1"})

	// Neither spelling of the СНИЛС anywhere in the database's tables, nor in the logs.
	digits := "11223344595"
	var n int
	require.NoError(t, b.db.Pool.QueryRow(ctx, `SELECT count(*) FROM audit_log a WHERE regexp_replace(a::text, '[^0-9]', '', 'g') LIKE '%' || $1 || '%'`, digits).Scan(&n))
	require.Zero(t, n)
	for _, table := range []string{"audit_log", "eligibility_residents", "api_clients", "attest_keys"} {
		require.NoError(t, b.db.Pool.QueryRow(ctx, fmt.Sprintf(`SELECT count(*) FROM %s t WHERE t::text LIKE '%%' || $1 || '%%' OR t::text LIKE '%%' || $2 || '%%'`, table), snils, digits).Scan(&n))
		require.Zero(t, n, table)
	}
	require.NotContains(t, b.logs.String(), digits)
	require.NotContains(t, b.logs.String(), "445 95")
}
