package webtest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/jackc/pgx/v5"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"socialhub/internal/clients"
	"socialhub/internal/config"
	"socialhub/internal/demo"
	"socialhub/internal/eligibility"
	"socialhub/internal/event"
	"socialhub/internal/hubtest"
	"socialhub/internal/kafkatest"
	"socialhub/internal/pgtest"
	"socialhub/internal/web"
	"socialhub/schemas"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// chromium finds the browser; without one the test fails, saying how to get it.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	require.FailNow(t, "headless Chromium is missing: run `make setup` (it installs Debian's chromium package)")
	return ""
}

// bundle is a running hub with demo data and the front ends before it.
type bundle struct {
	db    *pgtest.DB
	kafka *kafkatest.Cluster
	hub   string // the hub's API
	front string // the front ends, the rest proxied to the hub
	shots string // where screenshots go
}

func setup(t *testing.T) *bundle {
	t.Helper()
	// The hub serves the front ends itself. Its tiles come from a server that does not answer:
	// markers, list and details must not need them.
	h := hubtest.StartDemo(t, hubtest.Options{Tune: func(c *config.Config) { c.Web.TileURL = "http://127.0.0.1:9/{z}/{x}/{y}.png" }})
	db, kc, hubURL := h.DB, h.Kafka, "http://"+h.Addrs.HTTP

	shots := os.Getenv("SOCIALHUB_SCREENSHOTS")
	if shots == "" {
		shots = t.ArtifactDir()
	}
	require.NoError(t, os.MkdirAll(shots, 0o755))
	b := &bundle{db: db, kafka: kc, hub: hubURL, front: hubURL, shots: shots}

	// The demo's catalog and registry have landed.
	require.Eventually(t, func() bool {
		var p struct {
			TotalItems int `json:"total_items"`
		}
		return b.getJSON(t, "/services?per_page=1", &p) == http.StatusOK && p.TotalItems > 200
	}, 120*time.Second, 200*time.Millisecond, "the demo catalog loads")
	elig := eligibility.NewStore(db.Pool)
	require.Eventually(t, func() bool {
		n, err := elig.Count(context.Background())
		return err == nil && n == 20000
	}, 120*time.Second, 200*time.Millisecond, "the demo registry loads")
	return b
}

func (b *bundle) getJSON(t *testing.T, path string, out any) int {
	t.Helper()
	res, err := http.Get(b.hub + path)
	require.NoError(t, err)
	defer res.Body.Close()
	if res.StatusCode == http.StatusOK {
		require.NoError(t, json.NewDecoder(res.Body).Decode(out))
	}
	return res.StatusCode
}

// browser starts headless Chromium with a fresh profile, phone-sized or desktop-sized.
func (b *bundle) browser(t *testing.T, width, height int) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium(t)),
		chromedp.Flag("headless", true), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.NoFirstRun, chromedp.Flag("disable-sync", true), chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(width, height),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	require.NoError(t, chromedp.Do(ctx), "start Chromium")
	return ctx
}

func (b *bundle) screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(90))
	require.NoError(t, err)
	path := filepath.Join(b.shots, name+".png")
	require.NoError(t, os.WriteFile(path, png, 0o644))
	t.Logf("screenshot %s", path)
}

// pick sets a <select> and tells the page, as a user's choice does.
func pick(sel, value string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Evaluate[string](fmt.Sprintf(`(() => { const s = document.querySelector(%q); s.value = %q;
			s.dispatchEvent(new Event('change', {bubbles: true})); return s.value; })()`, sel, value))(ctx, tg)
		return err
	})
}

// do runs steps, each batch bounded so a missing element fails the test instead of hanging it.
func (b *bundle) do(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	require.NoError(t, chromedp.Do(ctx, steps...))
}

func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	require.NoError(t, err)
	return v
}

// count is the number of elements matching sel.
func count(ctx context.Context, sel string) (int, error) {
	return chromedp.Run(ctx, chromedp.Evaluate[int](fmt.Sprintf(`document.querySelectorAll(%q).length`, sel)))
}

func waitCount(t *testing.T, ctx context.Context, sel string, ok func(int) bool, msg string) int {
	t.Helper()
	var n int
	require.Eventually(t, func() bool {
		var err error
		n, err = count(ctx, sel)
		return err == nil && ok(n)
	}, 60*time.Second, 100*time.Millisecond, msg)
	return n
}

func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	require.NoError(t, err)
	return s
}

// category picks the top-level category with the most services the demo placed on the map.
func (b *bundle) category(t *testing.T) string {
	best, most := "", 0
	for _, term := range schemas.Taxonomy() {
		if term.ParentID != "" {
			continue
		}
		var p struct {
			TotalItems int `json:"total_items"`
		}
		require.Equal(t, http.StatusOK, b.getJSON(t, "/services?per_page=1&taxonomy_term_id="+term.ID, &p))
		if p.TotalItems > most {
			best, most = term.ID, p.TotalItems
		}
	}
	require.NotEmpty(t, best, "the demo has services in some category")
	return best
}

// push sends records to the raw topic as a connector does; the pipeline takes them from there.
func (b *bundle) push(t *testing.T, source, id, op string, doc any) {
	t.Helper()
	ev := &event.Event{ID: event.NewID(), Source: event.SourceURI(source), Type: event.Type("raw", "service", op),
		Subject: id, Time: time.Now().UTC(), DataSchema: schemas.SchemaID("service"), EntityType: "service", Op: op}
	if doc != nil {
		data, err := json.Marshal(doc)
		require.NoError(t, err)
		ev.Data = data
		ev.ContentHash, err = event.ContentHash(data)
		require.NoError(t, err)
	}
	value, err := event.Marshal(ev)
	require.NoError(t, err)
	w := &kafka.Writer{Addr: kafka.TCP(b.kafka.Config.Brokers...), Topic: b.kafka.Topics.Raw, RequiredAcks: kafka.RequireAll,
		BatchTimeout: time.Millisecond, AllowAutoTopicCreation: false}
	defer w.Close()
	require.NoError(t, w.WriteMessages(context.Background(), kafka.Message{Key: []byte(event.Key(source, id)), Value: value,
		Headers: []kafka.Header{{Key: "content-type", Value: []byte(event.ContentType)}}}))
}

// TestFrontEnds clicks through both front ends against a running hub.
func TestFrontEnds(t *testing.T) {
	t.Parallel()
	chromium(t)
	b := setup(t)
	t.Run("navigator", func(t *testing.T) { navigator(t, b) })
	t.Run("phone", func(t *testing.T) { phone(t, b) })
	t.Run("console", func(t *testing.T) { console(t, b) })
}

func navigator(t *testing.T, b *bundle) {
	ctx := b.browser(t, 1280, 900)
	category := b.category(t)

	// A browser asking for the hub's root lands on the navigator.
	b.do(t, ctx, chromedp.Navigate(b.front+web.NavigatorPath))
	waitCount(t, ctx, "#category option", func(n int) bool { return n > 10 }, "the taxonomy fills the category list")
	lang := eval[string](t, ctx, `document.documentElement.lang`)
	require.Equal(t, "ru", lang)

	// Choose a category: points in the list and on the map.
	b.do(t, ctx, pick("#category", category))
	all := waitCount(t, ctx, "#list li", func(n int) bool { return n > 1 }, "the category's points are listed")
	waitCount(t, ctx, "#map .marker", func(n int) bool { return n > 0 }, "and drawn on the map without tiles")
	b.screenshot(t, ctx, "navigator-category")

	// Filter by the okrug of the first point: fewer points, all in it.
	okrug := ""
	var p struct {
		Contents []struct {
			ID string `json:"id"`
		} `json:"contents"`
	}
	require.Equal(t, http.StatusOK, b.getJSON(t, "/services?per_page=500&taxonomy_term_id="+category, &p))
	okrugs := map[string]int{}
	for _, s := range p.Contents {
		var full struct {
			SALs []struct {
				Location struct {
					Addresses []struct {
						Okrug string `json:"okrug"`
					} `json:"addresses"`
				} `json:"location"`
			} `json:"service_at_locations"`
		}
		require.Equal(t, http.StatusOK, b.getJSON(t, "/services/"+s.ID, &full))
		for _, sal := range full.SALs {
			for _, a := range sal.Location.Addresses {
				if a.Okrug != "" {
					okrugs[a.Okrug]++
				}
			}
		}
	}
	for o, n := range okrugs {
		if okrug == "" || n > okrugs[okrug] {
			okrug = o
		}
	}
	require.NotEmpty(t, okrug, "the demo's places have okrugs")
	b.do(t, ctx, pick("#okrug", okrug))
	filtered := waitCount(t, ctx, "#list li", func(n int) bool { return n > 0 && n < all }, "the okrug filter narrows the list")
	districts := eval[int](t, ctx, `document.querySelectorAll('#district option').length`)
	require.Less(t, districts, 60, "the district list narrows to the okrug's")

	// Nearest to a typed point: the list is ordered by distance and says how far.
	b.do(t, ctx, chromedp.SendKeys(chromedp.CSS("#point"), "55.75, 37.62"), chromedp.Click(chromedp.CSS("#use-point")))
	waitCount(t, ctx, "#map .origin", func(n int) bool { return n == 1 }, "the origin is on the map")
	require.Regexp(t, `\d+(,\d)? (км|м)`, text(t, ctx, "#list li:first-child .point-meta"))

	// Open a point's details from the list.
	b.do(t, ctx, chromedp.Click(chromedp.CSS("#list li:first-child button")),
		chromedp.WaitVisible(chromedp.CSS("#details-title")))
	details := text(t, ctx, "#details")
	require.Contains(t, details, "Часы работы")
	require.Contains(t, details, "Все услуги по этому адресу")
	require.NotEmpty(t, text(t, ctx, "#details-title"))
	waitCount(t, ctx, `#details a[href^="geo:"]`, func(n int) bool { return n == 1 }, "a route link for the map app")
	waitCount(t, ctx, "#others li", func(n int) bool { return n > 0 }, "the services at the same point")
	require.Eventually(t, func() bool {
		s, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#others")))
		return s != "" && !strings.Contains(s, "Загрузка")
	}, 30*time.Second, 100*time.Millisecond)
	b.screenshot(t, ctx, "navigator-details")

	// Keyboard: Escape closes the details and gives focus back to the list.
	b.do(t, ctx, chromedp.KeyEvent("\x1b"))
	waitCount(t, ctx, "#details:not([hidden])", func(n int) bool { return n == 0 }, "Escape closes the details")

	// A marker opens the details too. The map redraws its markers as changes arrive, so a click can
	// meet a marker that was just replaced: click again until the details show.
	require.Eventually(t, func() bool {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		return chromedp.Do(actx, chromedp.Click(chromedp.CSS("#map .marker")),
			chromedp.WaitVisible(chromedp.CSS("#details-title"))) == nil
	}, 60*time.Second, 200*time.Millisecond, "a marker opens the details")

	// A change arrives live: a new place of this category appears, then disappears when its
	// source deletes it.
	name := "Пункт проверки навигатора"
	svc := map[string]any{
		"id": "NAV-1", "name": name, "status": "active", "email": "nav@example.mos.ru",
		"organization": map[string]any{"id": "NAV-ORG", "name": "ГБУ «Проверка навигатора»"},
		"phones":       []any{map[string]any{"id": "NAV-1/p", "number": "+7 (495) 000-00-01"}},
		"schedules":    []any{map[string]any{"id": "NAV-1/s", "freq": "WEEKLY", "byday": "MO,TU,WE,TH,FR,SA,SU", "opens_at": "00:00", "closes_at": "23:59"}},
		"attributes":   []any{map[string]any{"id": "NAV-1/a", "taxonomy_term_id": category}},
		"service_at_locations": []any{map[string]any{"id": "NAV-1/sal", "location": map[string]any{
			"id": "NAV-LOC", "location_type": "physical", "name": name, "latitude": 55.7501, "longitude": 37.6201,
			"addresses": []any{map[string]any{"id": "NAV-LOC/a", "address_1": "ул. Проверочная, д. 1", "city": "Москва",
				"country": "RU", "address_type": "physical", "okrug": okrug}},
		}}},
	}
	b.push(t, "navigator-test", "NAV-1", event.OpUpsert, svc)
	require.Eventually(t, func() bool {
		s, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#list")))
		return strings.Contains(s, name)
	}, 60*time.Second, 200*time.Millisecond, "a new service appears on the open page")
	waitCount(t, ctx, "#list li", func(n int) bool { return n == filtered+1 }, "as one more point")
	b.screenshot(t, ctx, "navigator-live-added")
	b.push(t, "navigator-test", "NAV-1", event.OpDelete, nil)
	require.Eventually(t, func() bool {
		s, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#list")))
		return s != "" && !strings.Contains(s, name)
	}, 60*time.Second, 200*time.Millisecond, "a deleted service disappears from the open page")

	// The searches were counted: per category and okrug, no personal data.
	var stats struct {
		Searches []web.SearchCount `json:"searches"`
	}
	res, err := http.Get(b.front + "/v1/stats/searches")
	require.NoError(t, err)
	require.NoError(t, json.NewDecoder(res.Body).Decode(&stats))
	res.Body.Close()
	seen := map[string]int64{}
	for _, s := range stats.Searches {
		seen[s.Category+"/"+s.Okrug] += s.Count
	}
	require.Positive(t, seen[category+"/"])
	require.Positive(t, seen[category+"/"+okrug])
}

// phone: the navigator on a phone-sized screen keeps the list and the details usable.
func phone(t *testing.T, b *bundle) {
	ctx := b.browser(t, 390, 844)
	category := b.category(t)
	b.do(t, ctx, chromedp.Navigate(b.front+web.NavigatorPath+"?category="+category))
	waitCount(t, ctx, "#list li", func(n int) bool { return n > 0 }, "the category from the link is shown")
	overflow := eval[bool](t, ctx, `document.documentElement.scrollWidth > window.innerWidth`)
	require.False(t, overflow, "nothing is wider than the phone's screen")
	b.do(t, ctx, chromedp.Click(chromedp.CSS("#list li:first-child button")),
		chromedp.WaitVisible(chromedp.CSS("#details-title")))
	b.screenshot(t, ctx, "navigator-phone")
}

// operator is a contact-centre client with its token.
func (b *bundle) operator(t *testing.T) string {
	_, token, err := clients.NewStore(b.db.Pool).Create(context.Background(), clients.NewClient{Name: "Оператор Иванова",
		Kind: clients.KindOperator, Scopes: []string{clients.ScopeEligibilityRead, clients.ScopeApplicationsWrite, clients.ScopeApplicationsRead},
		Purposes: []string{"consultation"}})
	require.NoError(t, err)
	return token
}

// caller is a demo resident who may use some service: a pensioner.
func (b *bundle) caller(t *testing.T) string {
	conn, err := pgx.Connect(context.Background(), strings.Replace(b.db.URL, "/"+b.db.Name, "/"+b.db.Name+"_demo_registry", 1))
	require.NoError(t, err)
	defer conn.Close(context.Background())
	var snils string
	require.NoError(t, conn.QueryRow(context.Background(),
		"SELECT snils FROM "+demo.DefaultResidentsTable+" WHERE pensioner ORDER BY id LIMIT 1").Scan(&snils))
	return snils
}

func console(t *testing.T, b *bundle) {
	ctx := b.browser(t, 1280, 900)
	token := b.operator(t)

	// A wrong token is refused; the operator's own signs in.
	b.do(t, ctx, chromedp.Navigate(b.front+web.ConsolePath),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), "not-a-token"),
		chromedp.Click(chromedp.CSS(`#signin-form button[type="submit"]`)))
	require.Eventually(t, func() bool {
		s, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#signin-error")))
		return strings.Contains(s, "не принят")
	}, 30*time.Second, 100*time.Millisecond)
	b.do(t, ctx, chromedp.Navigate(b.front+web.ConsolePath), chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), token),
		chromedp.Click(chromedp.CSS(`#signin-form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS("#work")))
	require.Contains(t, text(t, ctx, "#who"), "Оператор Иванова")

	// Search services as the navigator does.
	b.do(t, ctx, pick("#search-category", b.category(t)),
		chromedp.Click(chromedp.CSS(`#search-form button[type="submit"]`)))
	waitCount(t, ctx, "#search-results li", func(n int) bool { return n > 0 }, "services found")
	b.do(t, ctx, chromedp.Click(chromedp.CSS("#search-results li:first-child button")))
	waitCount(t, ctx, "#search-results li:first-child .service-details li", func(n int) bool { return n > 0 }, "a service's places")

	// A caller's eligibility, with why: the national id goes in the body.
	b.do(t, ctx, chromedp.SendKeys(chromedp.CSS("#national-id"), b.caller(t)),
		chromedp.Click(chromedp.CSS(`#caller-form button[type="submit"]`)))
	waitCount(t, ctx, "#eligible li", func(n int) bool { return n > 0 }, "the caller's eligible services are listed")
	require.Contains(t, text(t, ctx, "#eligible li:first-child .why"), "Почему")
	b.screenshot(t, ctx, "console-eligibility")

	// The check was audited under the operator.
	var n int
	require.NoError(t, b.db.Pool.QueryRow(context.Background(),
		`SELECT count(*) FROM audit_log WHERE action = 'eligible_services' AND client_name = 'Оператор Иванова' AND purpose = 'consultation'`).Scan(&n))
	require.Equal(t, 1, n)

	// File an application for the caller and read the case back by its number.
	consoleApplications(t, b, ctx)
}

// consoleApplications files an application for the caller and finds its case by number, with its
// history.
func consoleApplications(t *testing.T, b *bundle, ctx context.Context) {
	b.do(t, ctx, chromedp.Click(chromedp.CSS("#eligible li:first-child button")),
		chromedp.WaitVisible(chromedp.CSS("#apply-request")),
		chromedp.SendKeys(chromedp.CSS("#apply-request"), "Просит записать на занятия"),
		chromedp.Click(chromedp.CSS(`#apply-form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS("#filed-case")))
	caseNumber := text(t, ctx, "#filed-case")
	require.NotEmpty(t, caseNumber)
	b.screenshot(t, ctx, "console-application")
	b.do(t, ctx, chromedp.Click(chromedp.CSS("#apply-result button")))
	waitCount(t, ctx, "#case-history tbody tr", func(n int) bool { return n > 0 }, "the case's history")
	require.Equal(t, caseNumber, strings.TrimSpace(text(t, ctx, "#case-number-value")))
	b.screenshot(t, ctx, "console-case")
}
