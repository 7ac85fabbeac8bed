package listings_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"socialhub/connectors"
	"socialhub/connectors/hsds"
	"socialhub/internal/audit"
	"socialhub/internal/broker"
	"socialhub/internal/catalog"
	"socialhub/internal/changes"
	"socialhub/internal/clients"
	"socialhub/internal/config"
	"socialhub/internal/dlq"
	"socialhub/internal/eligibility"
	"socialhub/internal/event"
	"socialhub/internal/kafkatest"
	"socialhub/internal/listings"
	"socialhub/internal/metrics"
	"socialhub/internal/pgtest"
	"socialhub/internal/resolve"
	"socialhub/internal/schedule"
	"socialhub/internal/validate"
	"socialhub/schemas"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

var quiet = slog.New(slog.DiscardHandler)

// hub is the real pipeline of a test, built as hub.Run builds it: validate, resolve, the outbox
// relay, the webhook deliverer, the dead-letter indexer, the change feed's HTTP API and this
// package's API, on the test's own database and Kafka cluster.
type hub struct {
	pool     *pgxpool.Pool
	kc       *kafkatest.Cluster
	producer *kafka.Writer
	clients  *clients.Store
	audit    *audit.Log
	catalog  *catalog.Store
	store    *listings.Store
	subs     *changes.Subscriptions
	sched    *schedule.Scheduler
	srv      *httptest.Server
	checker  listings.Checker
}

type hubOptions struct {
	// checker replaces the API's checker (to let a document through that validate rejects).
	checker func(*validate.Checker) listings.Checker
}

func startHub(t *testing.T, o hubOptions) *hub {
	t.Helper()
	db := pgtest.NewDB(t, connectors.Migrations(), catalog.Migrations(), eligibility.Migrations(), audit.Migrations(),
		clients.Migrations(), changes.Migrations(), resolve.Migrations(), dlq.Migrations(), listings.Migrations())
	kc := kafkatest.New(t, 3)
	w := broker.NewWriter(kc.Config)
	t.Cleanup(func() { _ = w.Close() })
	validator, err := schemas.NewValidator()
	require.NoError(t, err)
	m := metrics.New()
	h := &hub{pool: db.Pool, kc: kc, producer: w, clients: clients.NewStore(db.Pool), audit: audit.New(db.Pool),
		catalog: catalog.NewStore(db.Pool), store: listings.NewStore(db.Pool), subs: changes.NewSubscriptions(db.Pool)}
	outbox := changes.NewOutbox(db.Pool)
	notifier := changes.NewNotifier()
	vstage := validate.New(validate.Options{Kafka: kc.Config, Topics: kc.Topics, Validator: validator, Producer: w, Metrics: m,
		Logger: quiet, BatchWait: 5 * time.Millisecond})
	rstage := resolve.New(resolve.Options{Pool: db.Pool, Catalog: h.catalog, Eligibility: eligibility.NewStore(db.Pool), Outbox: outbox,
		Kafka: kc.Config, Topics: kc.Topics, Producer: w, Metrics: m, Logger: quiet, BatchWait: 5 * time.Millisecond, SessionTimeout: 6 * time.Second})
	relay := changes.NewRelay(changes.RelayOptions{Notifier: notifier, Kafka: kc.Config, Outbox: outbox, Producer: w, Topics: kc.Topics,
		Metrics: m, Logger: quiet, Interval: 10 * time.Millisecond})
	deliverer := changes.NewDeliverer(changes.DelivererOptions{Pool: db.Pool, Notifier: notifier, Metrics: m, Logger: quiet,
		Timeout: 2 * time.Second, PollInterval: 50 * time.Millisecond, RetryBase: 50 * time.Millisecond, RetryMax: time.Second})
	dlqStore := dlq.NewStore(db.Pool)
	indexer := dlq.NewIndexer(dlq.IndexerOptions{Store: dlqStore, Catalog: h.catalog, Kafka: kc.Config, Topics: kc.Topics,
		Metrics: m, Logger: quiet, BatchWait: 5 * time.Millisecond, SweepInterval: 100 * time.Millisecond})
	checkpoints := connectors.NewCheckpoints(db.Pool)
	registry := connectors.NewRegistry(hsds.Kind())
	deps := connectors.Deps{Logger: quiet, DataDir: t.TempDir(), Getenv: func(string) string { return "" }}
	runner := connectors.NewRunner(connectors.RunnerOptions{Registry: registry, Checkpoints: checkpoints, Producer: w, Topics: kc.Topics,
		Metrics: m, Logger: quiet, Deps: deps, Retries: 1, Backoff: time.Millisecond})
	h.sched = schedule.New(runner, checkpoints, nil, quiet)

	var checker listings.Checker = validate.NewChecker(validator)
	if o.checker != nil {
		checker = o.checker(validate.NewChecker(validator))
	}
	h.checker = checker
	guard := clients.NewGuard(h.clients, h.audit, quiet)
	mux := http.NewServeMux()
	changes.NewFeedAPI(changes.FeedAPIOptions{Feed: changes.NewFeed(db.Pool), Notifier: notifier, Heartbeat: time.Second,
		PollInterval: 100 * time.Millisecond, Logger: quiet}).Mount(mux)
	listings.New(listings.Options{Store: h.store, Guard: guard, Clients: h.clients, Audit: h.audit, Checker: checker, Producer: w,
		Topics: kc.Topics, Catalog: h.catalog, DLQ: dlqStore, Runs: checkpoints, Scheduler: h.sched,
		CheckSource: func(src config.Source) error { _, err := registry.New(src, deps); return err },
		Logger:      quiet}).Mount(mux)
	h.srv = httptest.NewServer(mux)
	t.Cleanup(h.srv.Close)

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	sync := listings.NewFeedSync(h.store, h.sched, 100*time.Millisecond, quiet)
	for _, run := range []func(context.Context) error{vstage.Run, rstage.Run, relay.Run, deliverer.Run, indexer.Run, h.sched.Run, sync.Run} {
		wg.Go(func() {
			if err := run(ctx); err != nil {
				t.Errorf("hub component failed: %v", err)
			}
		})
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
	return h
}

// ngo creates an NGO client bound to inn and returns its token.
func (h *hub) ngo(t *testing.T, name, inn string) (clients.Client, string) {
	t.Helper()
	n := clients.NewClient{Name: name, Kind: clients.KindNGO, Scopes: []string{clients.ScopeListingsWrite}}
	if inn != "" {
		n.Organization = &clients.Organization{INN: inn, Name: name}
	}
	c, token, err := h.clients.Create(context.Background(), n)
	require.NoError(t, err)
	return c, token
}

// do sends a request with token and returns the status and decoded body.
func (h *hub) do(t *testing.T, method, path, token string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		require.NoError(t, err)
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, h.srv.URL+path, rd)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var out map[string]any
	if len(bytes.TrimSpace(data)) > 0 {
		require.NoError(t, json.Unmarshal(data, &out), string(data))
	}
	return resp.StatusCode, out
}

// status polls the listing until its status is want and returns the state.
func (h *hub) status(t *testing.T, id, token, want string) map[string]any {
	t.Helper()
	var last map[string]any
	require.Eventually(t, func() bool {
		code, body := h.do(t, http.MethodGet, "/v1/listings/"+id, token, nil)
		require.Equal(t, http.StatusOK, code, body)
		last = body
		return body["status"] == want
	}, 30*time.Second, 20*time.Millisecond, "listing %s never became %s", id, want)
	return last
}

// listing is a service document an NGO pushes: a service and one location.
func listing(id, name string) map[string]any {
	return map[string]any{
		"id": id, "name": name, "status": "active",
		"description":  "Бесплатная юридическая консультация для семей с детьми",
		"organization": map[string]any{"id": "ours", "name": "Фонд «Вера»"},
		"service_at_locations": []any{map[string]any{
			"id": id + "-sal",
			"location": map[string]any{
				"id": id + "-loc", "name": "Офис фонда", "location_type": "physical",
				"latitude": 55.7312, "longitude": 37.6103,
				"addresses": []any{map[string]any{"id": id + "-addr", "address_1": "ул. Большая Якиманка, 22", "city": "Москва",
					"state_province": "Москва", "postal_code": "119180", "country": "RU", "address_type": "physical", "district": "Якиманка"}},
			},
		}},
	}
}

// produce writes one raw record as a source would.
func (h *hub) produce(t *testing.T, source, entity, id string, doc any) {
	t.Helper()
	data, err := json.Marshal(doc)
	require.NoError(t, err)
	hash, err := event.ContentHash(data)
	require.NoError(t, err)
	ev := &event.Event{ID: event.NewID(), Source: event.SourceURI(source), Type: event.Type("raw", entity, event.OpUpsert),
		Subject: id, Time: time.Now().UTC(), DataSchema: schemas.SchemaID(entity), EntityType: entity, Op: event.OpUpsert,
		Data: data, ContentHash: hash}
	value, err := event.Marshal(ev)
	require.NoError(t, err)
	require.NoError(t, h.producer.WriteMessages(context.Background(),
		kafka.Message{Topic: h.kc.Topics.Raw, Key: []byte(event.Key(source, id)), Value: value}))
}
