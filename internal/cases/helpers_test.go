package cases_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"socialhub/internal/audit"
	"socialhub/internal/cases"
	"socialhub/internal/catalog"
	"socialhub/internal/changes"
	"socialhub/internal/clients"
	"socialhub/internal/eligibility"
	"socialhub/internal/pgtest"
	"socialhub/internal/pseudonym"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// A valid СНИЛС (its checksum holds) and the key the test pseudonymizes with.
const snils = "112-233-445 95"

var pseudonymKey = bytes.Repeat([]byte{7}, 32)

// clock is the store's clock, moved by tests to make cases overdue.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type testBundle struct {
	db       *pgtest.DB
	catalog  *catalog.Store
	elig     *eligibility.Store
	clients  *clients.Store
	audit    *audit.Log
	outbox   *changes.Outbox
	store    *cases.Store
	handler  http.Handler
	clock    *clock
	pseud    *pseudonym.Pseudonymizer
	services map[string]string // name → canonical id
	// Tokens: the contact centre, the Марьино centre, the ЮВАО centres, a chat-bot, an NGO.
	operator, marino, yuvao, bot string
	marinoID                     string
}

func setup(t testing.TB) *testBundle {
	t.Helper()
	ctx := context.Background()
	db := pgtest.NewDB(t, audit.Migrations(), clients.Migrations(), catalog.Migrations(), eligibility.Migrations(),
		changes.Migrations(), cases.Migrations())
	rules, err := eligibility.DefaultRules()
	require.NoError(t, err)
	b := &testBundle{db: db, catalog: catalog.NewStore(db.Pool), clients: clients.NewStore(db.Pool), audit: audit.New(db.Pool),
		outbox: changes.NewOutbox(db.Pool), clock: &clock{now: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}, services: map[string]string{}}
	b.elig = eligibility.NewStore(db.Pool, eligibility.WithRules(rules), eligibility.WithClock(b.clock.Now))
	b.pseud, err = pseudonym.New(pseudonymKey)
	require.NoError(t, err)

	create := func(name string, kind clients.Kind, scopes ...string) (string, string) {
		c, token, err := b.clients.Create(ctx, clients.NewClient{Name: name, Kind: kind, Scopes: scopes, Purposes: []string{"social_service"}})
		require.NoError(t, err)
		return c.ID, token
	}
	_, b.operator = create("Контакт-центр", clients.KindOperator, clients.ScopeApplicationsWrite, clients.ScopeApplicationsRead)
	var yuvaoID string
	b.marinoID, b.marino = create("ТЦСО «Марьино»", clients.KindDepartment, clients.ScopeApplicationsRead, clients.ScopeApplicationsEvents)
	yuvaoID, b.yuvao = create("ТЦСО ЮВАО", clients.KindDepartment, clients.ScopeApplicationsRead, clients.ScopeApplicationsEvents)
	_, b.bot = create("Чат-бот", clients.KindApp, clients.ScopeCasesStatus)

	caseRules, err := cases.DefaultRules(cases.RulesSource{Name: "override.yaml", Data: fmt.Appendf(nil, `
organizations:
  - {id: tcso-marino, name: ГБУ ТЦСО «Марьино», clients: [%s]}
  - {id: tcso-yuvao, name: Территориальные центры социального обслуживания ЮВАО, clients: [%s]}
`, b.marinoID, yuvaoID)})
	require.NoError(t, err)
	b.store = cases.NewStore(cases.Options{Pool: db.Pool, Rules: caseRules, Catalog: b.catalog, Eligibility: b.elig,
		Pseudonymizer: b.pseud, Outbox: b.outbox, Now: b.clock.Now})
	mux := http.NewServeMux()
	cases.NewAPI(cases.APIOptions{Store: b.store, Guard: clients.NewGuard(b.clients, b.audit, nil), Audit: b.audit}).Mount(mux)
	b.handler = mux

	b.addService(t, "Социальное обслуживание на дому", "social-service-centre")
	b.addService(t, "Клуб «Активное долголетие»", "pensioners-activities")
	b.addService(t, "Устройство в дом-интернат", "care-homes")
	return b
}

func (b *testBundle) addService(t testing.TB, name, term string) {
	t.Helper()
	ctx := context.Background()
	id := fmt.Sprintf("svc-%d", len(b.services))
	doc, err := json.Marshal(map[string]any{
		"id": id, "name": name, "status": "active",
		"organization": map[string]any{"id": "org-" + id, "name": "ГБУ ТЦСО " + id},
		"attributes":   []any{map[string]any{"id": id + "/attr", "taxonomy_term_id": term}},
	})
	require.NoError(t, err)
	tx, err := b.db.Pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	chs, err := b.catalog.Apply(ctx, tx, []catalog.Record{{Source: "test", ExternalID: id, Op: catalog.OpUpsert, Doc: doc,
		ContentHash: id, SeenAt: time.Now()}})
	require.NoError(t, err)
	require.NoError(t, tx.Commit(ctx))
	for _, c := range chs {
		if c.EntityType == catalog.EntityService {
			b.services[name] = c.EntityID
		}
	}
	require.NotEmpty(t, b.services[name])
}

// addResident puts a resident of the district into the eligibility store and returns the pseudonym.
func (b *testBundle) addResident(t testing.TB, nationalID, district, okrug string, pensioner bool) string {
	t.Helper()
	ctx := context.Background()
	p, err := b.pseud.Pseudonym(nationalID)
	require.NoError(t, err)
	facts, err := json.Marshal(map[string]any{"id": p, "address": map[string]any{"address_1": "ул. Братиславская, д. 14",
		"city": "Москва", "district": district, "okrug": okrug}, "registered_since": "2001-05-01", "birth_date": "1990-01-01",
		"household": map[string]any{"members": 1}, "disability_group": "none", "pensioner": pensioner, "low_income": false, "large_family": false})
	require.NoError(t, err)
	tx, err := b.db.Pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	_, err = b.elig.Apply(ctx, tx, []eligibility.Record{{Source: "residents", Pseudonym: p, Facts: facts}})
	require.NoError(t, err)
	require.NoError(t, tx.Commit(ctx))
	return p
}

// call sends a request with a token and the purpose, and decodes the JSON answer.
func (b *testBundle) call(t testing.TB, method, path, token string, body any) (int, map[string]any) {
	t.Helper()
	var rd *bytes.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		require.NoError(t, err)
		rd = bytes.NewReader(raw)
	} else {
		rd = bytes.NewReader(nil)
	}
	req := httptest.NewRequest(method, path, rd)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set(clients.PurposeHeader, "social_service")
	rec := httptest.NewRecorder()
	b.handler.ServeHTTP(rec, req)
	var out map[string]any
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &out), rec.Body.String())
	return rec.Code, out
}

func (b *testBundle) apply(t testing.TB, service, channel string, resident map[string]any) (int, map[string]any) {
	t.Helper()
	return b.call(t, http.MethodPost, "/v1/applications", b.operator, map[string]any{
		"resident": resident, "service_id": b.services[service], "channel": channel,
		"request": "Нужна помощь на дому после операции", "contact": map[string]any{"method": "phone", "value": "+7 495 000-00-00"},
	})
}

func event(id, status string, at time.Time) map[string]any {
	e := map[string]any{"event_id": id, "status": status, "occurred_at": at.Format(time.RFC3339Nano), "actor": "специалист Иванова"}
	if status == cases.StatusRefused {
		e["reason"] = "Не представлены документы"
	}
	return e
}

func historyStatuses(t testing.TB, c map[string]any) []string {
	t.Helper()
	var out []string
	for _, h := range c["history"].([]any) {
		out = append(out, h.(map[string]any)["status"].(string))
	}
	return out
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
