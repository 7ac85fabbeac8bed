package clients_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"socialhub/internal/audit"
	"socialhub/internal/clients"
	"socialhub/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

type testBundle struct {
	db      *pgtest.DB
	store   *clients.Store
	audit   *audit.Log
	guard   *clients.Guard
	handler http.Handler
}

func setup(t testing.TB) testBundle {
	t.Helper()
	db := pgtest.NewDB(t, audit.Migrations(), clients.Migrations())
	b := testBundle{db: db, store: clients.NewStore(db.Pool), audit: audit.New(db.Pool)}
	b.guard = clients.NewGuard(b.store, b.audit, nil)
	mux := http.NewServeMux()
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := clients.FromContext(r.Context())
		_, _ = w.Write([]byte(c.Name + "|" + clients.PurposeFromContext(r.Context())))
	})
	mux.Handle("GET /v1/residents/{pseudonym}/eligible-services", b.guard.Require(clients.ScopeEligibilityRead, clients.WithPurpose())(ok))
	mux.Handle("GET /lookup-ish", b.guard.Require("lookup:*")(ok))
	b.handler = mux
	return b
}

func (b testBundle) create(t testing.TB, n clients.NewClient) (clients.Client, string) {
	t.Helper()
	c, token, err := b.store.Create(context.Background(), n)
	require.NoError(t, err)
	return c, token
}

func (b testBundle) get(t testing.TB, path, token, purpose string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if purpose != "" {
		req.Header.Set(clients.PurposeHeader, purpose)
	}
	rec := httptest.NewRecorder()
	b.handler.ServeHTTP(rec, req)
	return rec
}

const subject = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestCreateListRevoke(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	c, token := b.create(t, clients.NewClient{Name: "УСЗН ЮВАО", Kind: clients.KindDepartment,
		Scopes: []string{clients.ScopeLookupPensionStatus, clients.ScopeLookupPensionStatus}, Purposes: []string{"subsidy"}})
	require.Equal(t, []string{clients.ScopeLookupPensionStatus}, c.Scopes)
	require.Equal(t, clients.DefaultRate, c.Rate)
	got, err := b.store.Authenticate(ctx, token)
	require.NoError(t, err)
	require.Equal(t, c.ID, got.ID)

	// The token is not in the table, only its hash.
	var n int
	require.NoError(t, b.db.Pool.QueryRow(ctx, `SELECT count(*) FROM api_clients WHERE position($1 in api_clients::text) > 0`, token).Scan(&n))
	require.Zero(t, n)

	list, err := b.store.List(ctx)
	require.NoError(t, err)
	require.Len(t, list, 1)
	_, err = b.store.Revoke(ctx, c.ID)
	require.NoError(t, err)
	_, err = b.store.Authenticate(ctx, token)
	require.ErrorIs(t, err, clients.ErrUnauthorized)
	_, err = b.store.Revoke(ctx, "no-such-client")
	require.ErrorIs(t, err, clients.ErrNotFound)
}

func TestCreateRefusesScopesOutsideTheKind(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for name, n := range map[string]clients.NewClient{
		"ngo with a lookup":      {Name: "Фонд", Kind: clients.KindNGO, Scopes: []string{clients.ScopeLookupPensionStatus}},
		"app reading the audit":  {Name: "Бот", Kind: clients.KindApp, Scopes: []string{clients.ScopeAuditRead}},
		"unknown scope":          {Name: "X", Kind: clients.KindDepartment, Scopes: []string{"lookup:everything"}},
		"unknown kind":           {Name: "X", Kind: "robot"},
		"no name":                {Kind: clients.KindAdmin},
		"purpose not a code":     {Name: "X", Kind: clients.KindDepartment, Purposes: []string{"Субсидия"}},
		"operator with a lookup": {Name: "КЦ", Kind: clients.KindOperator, Scopes: []string{clients.ScopeLookupDisabilityStatus}},
	} {
		_, _, err := b.store.Create(context.Background(), n)
		require.ErrorIs(t, err, clients.ErrInvalidClient, name)
	}
}

func TestGuard(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	_, operator := b.create(t, clients.NewClient{Name: "Контакт-центр", Kind: clients.KindOperator,
		Scopes: []string{clients.ScopeEligibilityRead}, Purposes: []string{"consultation"}})
	_, ngo := b.create(t, clients.NewClient{Name: "Фонд «Вера»", Kind: clients.KindNGO})
	revoked, revokedToken := b.create(t, clients.NewClient{Name: "Старый", Kind: clients.KindOperator,
		Scopes: []string{clients.ScopeEligibilityRead}, Purposes: []string{"consultation"}})
	_, err := b.store.Revoke(ctx, revoked.ID)
	require.NoError(t, err)
	path := "/v1/residents/" + subject + "/eligible-services"

	rec := b.get(t, path, operator, "consultation")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Equal(t, "Контакт-центр|consultation", rec.Body.String())

	for name, tc := range map[string]struct {
		path, token, purpose string
		status               int
	}{
		"no token":           {path, "", "consultation", http.StatusUnauthorized},
		"unknown token":      {path, "shub_AAAA", "consultation", http.StatusUnauthorized},
		"not our token":      {path, "eyJhbGciOi", "consultation", http.StatusUnauthorized},
		"revoked token":      {path, revokedToken, "consultation", http.StatusUnauthorized},
		"ngo":                {path, ngo, "consultation", http.StatusForbidden},
		"no purpose":         {path, operator, "", http.StatusForbidden},
		"undeclared purpose": {path, operator, "marketing", http.StatusForbidden},
		"no lookup scope":    {"/lookup-ish", operator, "", http.StatusForbidden},
	} {
		rec := b.get(t, tc.path, tc.token, tc.purpose)
		require.Equal(t, tc.status, rec.Code, name)
		var body map[string]any
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body), name)
		require.NotEmpty(t, body["error"], name)
	}

	// Every refusal is in the audit log, with the resident it was about when the path names one.
	head, err := b.audit.Verify(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 8, head.Rows)
	rows, err := b.audit.ForSubject(ctx, subject, 0, 100)
	require.NoError(t, err)
	require.Len(t, rows, 7)
	for _, e := range rows {
		require.Equal(t, audit.OutcomeRefused, e.Outcome)
	}
	// The one refusal without a resident in its path: the operator asking for a lookup.
	var scopeRefusal *audit.Entry
	for seq := int64(1); seq <= 8; seq++ {
		e, err := b.audit.Get(ctx, seq)
		require.NoError(t, err)
		if e.Subject == "" {
			scopeRefusal = &e
		}
	}
	require.NotNil(t, scopeRefusal)
	require.Equal(t, http.StatusForbidden, scopeRefusal.Status)
	require.Equal(t, "Контакт-центр", scopeRefusal.ClientName)
	require.Contains(t, string(scopeRefusal.Detail), "lookup:*")
}

func TestGuardRateLimit(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, token := b.create(t, clients.NewClient{Name: "УСЗН", Kind: clients.KindDepartment,
		Scopes: []string{clients.ScopeLookupPensionStatus}, Rate: 0.01, Burst: 3})
	for range 3 {
		require.Equal(t, http.StatusOK, b.get(t, "/lookup-ish", token, "").Code)
	}
	rec := b.get(t, "/lookup-ish", token, "")
	require.Equal(t, http.StatusTooManyRequests, rec.Code)
	require.NotEmpty(t, rec.Header().Get("Retry-After"))
}

func TestBindOrganization(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	ngo, token := b.create(t, clients.NewClient{Name: "Фонд «Вера»", Kind: clients.KindNGO, Scopes: []string{clients.ScopeListingsWrite},
		Organization: &clients.Organization{INN: " 7701234567 "}})
	require.Equal(t, &clients.Organization{INN: "7701234567"}, ngo.Organization)
	got, err := b.store.Authenticate(ctx, token)
	require.NoError(t, err)
	require.Equal(t, "7701234567", got.Organization.INN)

	bound, err := b.store.Bind(ctx, ngo.ID, clients.Organization{ID: "0b7c3e1e-0000-5000-8000-000000000001", INN: "7709876543", OGRN: "1027700000001", Name: "БФ «Вера»"})
	require.NoError(t, err)
	require.Equal(t, "7709876543", bound.Organization.INN)
	again, err := b.store.Get(ctx, ngo.ID)
	require.NoError(t, err)
	require.Equal(t, bound.Organization, again.Organization)

	app, _ := b.create(t, clients.NewClient{Name: "Навигатор", Kind: clients.KindApp})
	require.Nil(t, app.Organization)
	_, err = b.store.Bind(ctx, app.ID, clients.Organization{INN: "7701234567"})
	require.ErrorIs(t, err, clients.ErrInvalidClient, "only ngo clients are bound")
	_, err = b.store.Bind(ctx, "no-such-client", clients.Organization{INN: "7701234567"})
	require.ErrorIs(t, err, clients.ErrNotFound)
	for name, org := range map[string]clients.Organization{
		"no identifier": {Name: "Фонд"},
		"short INN":     {INN: "12345"},
		"letters OGRN":  {OGRN: "10277000000AB"},
	} {
		_, err := b.store.Bind(ctx, ngo.ID, org)
		require.ErrorIs(t, err, clients.ErrInvalidClient, name)
	}
	_, _, err = b.store.Create(ctx, clients.NewClient{Name: "УСЗН", Kind: clients.KindDepartment, Organization: &clients.Organization{INN: "7701234567"}})
	require.ErrorIs(t, err, clients.ErrInvalidClient, "a department is not bound")
	_, _, err = b.store.Create(ctx, clients.NewClient{Name: "Фонд", Kind: clients.KindNGO, Scopes: []string{clients.ScopeClientsAdmin}})
	require.ErrorIs(t, err, clients.ErrInvalidClient, "an ngo does not administer clients")
}
