package changes_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"socialhub/internal/changes"
)

// receiver is a webhook endpoint that verifies signatures the way the Standard Webhooks spec tells
// a receiver to (written from the spec, not with the hub's signer) and de-duplicates by webhook-id.
type receiver struct {
	t       testing.TB
	srv     *httptest.Server
	mu      sync.Mutex
	secrets []string
	down    atomic.Bool
	seen    map[string]bool
	got     []changes.WebhookPayload // de-duplicated, in arrival order
	sigs    []string
	calls   atomic.Int64
	badSigs atomic.Int64
}

func newReceiver(t testing.TB) *receiver {
	r := &receiver{t: t, seen: map[string]bool{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) trust(secrets ...string) {
	r.mu.Lock()
	r.secrets = secrets
	r.mu.Unlock()
}

// verify checks webhook-signature: any "v1,<sig>" among the space-separated signatures must equal
// base64(HMAC-SHA256(key, id + "." + timestamp + "." + body)) with key = base64-decoded secret
// after "whsec_", and the timestamp must be recent.
func verify(secrets []string, h http.Header, body []byte) bool {
	id, ts, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return false
	}
	var unix int64
	if err := json.Unmarshal([]byte(ts), &unix); err != nil || time.Since(time.Unix(unix, 0)).Abs() > 5*time.Minute {
		return false
	}
	for _, secret := range secrets {
		key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
		if err != nil {
			continue
		}
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(id + "." + ts + "." + string(body)))
		want := mac.Sum(nil)
		for _, s := range strings.Fields(sigs) {
			version, sig, ok := strings.Cut(s, ",")
			if !ok || version != "v1" {
				continue
			}
			got, err := base64.StdEncoding.DecodeString(sig)
			if err == nil && hmac.Equal(got, want) {
				return true
			}
		}
	}
	return false
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	r.calls.Add(1)
	if r.down.Load() {
		http.Error(w, "maintenance", http.StatusServiceUnavailable)
		return
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !verify(r.secrets, req.Header, body) {
		r.badSigs.Add(1)
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	id := req.Header.Get("webhook-id")
	if !r.seen[id] {
		r.seen[id] = true
		var p changes.WebhookPayload
		if err := json.Unmarshal(body, &p); err != nil {
			http.Error(w, "bad json", http.StatusBadRequest)
			return
		}
		r.got = append(r.got, p)
		r.sigs = append(r.sigs, req.Header.Get("webhook-signature"))
	}
	w.WriteHeader(http.StatusNoContent)
}

func (r *receiver) received() []changes.WebhookPayload {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]changes.WebhookPayload(nil), r.got...)
}

func (r *receiver) waitFor(t testing.TB, n int) []changes.WebhookPayload {
	t.Helper()
	require.Eventually(t, func() bool { return len(r.received()) >= n }, 20*time.Second, 5*time.Millisecond, "%d deliveries", n)
	return r.received()
}

type webhookBundle struct {
	feedBundle
	api   http.Handler
	store *changes.Subscriptions
}

func setupWebhooks(t *testing.T) webhookBundle {
	t.Helper()
	b := webhookBundle{feedBundle: setupFeed(t, time.Second)}
	b.store = changes.NewSubscriptions(b.db.Pool)
	mux := http.NewServeMux()
	changes.NewSubscriptionAPI(changes.SubscriptionAPIOptions{
		Subscriptions: b.store, RotationGrace: time.Hour,
		Owner: func(r *http.Request) (string, bool) {
			o := r.Header.Get("X-Owner")
			return o, o != ""
		},
	}).Mount(mux)
	b.api = mux
	return b
}

func (b webhookBundle) startWorkers(t *testing.T, n int, opts changes.DelivererOptions) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range n {
		o := opts
		o.Pool, o.Notifier, o.Metrics, o.Logger = b.db.Pool, b.notifier, b.metrics, discard()
		if o.PollInterval == 0 {
			o.PollInterval = 10 * time.Millisecond
		}
		if o.RetryBase == 0 {
			o.RetryBase, o.RetryMax = 5*time.Millisecond, 40*time.Millisecond
		}
		if o.Timeout == 0 {
			o.Timeout = 2 * time.Second
		}
		d := changes.NewDeliverer(o)
		wg.Go(func() { require.NoError(t, d.Run(ctx)) })
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
}

func (b webhookBundle) call(t *testing.T, method, path, owner string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		require.NoError(t, err)
		rd = bytes.NewReader(raw)
	}
	req := httptest.NewRequest(method, path, rd)
	if owner != "" {
		req.Header.Set("X-Owner", owner)
	}
	rec := httptest.NewRecorder()
	b.api.ServeHTTP(rec, req)
	var out map[string]any
	if rec.Body.Len() > 0 {
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &out), rec.Body.String())
	}
	return rec.Code, out
}

func (b webhookBundle) subscribe(t *testing.T, owner, url string, types ...string) (id, secret string) {
	t.Helper()
	code, body := b.call(t, http.MethodPost, "/v1/subscriptions", owner, map[string]any{"url": url, "types": types})
	require.Equal(t, http.StatusCreated, code, body)
	require.True(t, strings.HasPrefix(body["secret"].(string), "whsec_"))
	return body["id"].(string), body["secret"].(string)
}

// Deliveries are signed per the spec, and a receiver outage loses and reorders nothing: every
// event arrives, each entity's versions in order, with the same webhook-id on every retry.
func TestWebhookRetryAfterOutage(t *testing.T) {
	t.Parallel()
	b := setupWebhooks(t)
	rcv := newReceiver(t)
	id, secret := b.subscribe(t, "navigator", rcv.srv.URL)
	rcv.trust(secret)
	b.startWorkers(t, 3, changes.DelivererOptions{Concurrency: 4})

	appendCommitted(t, b.db, b.outbox, created(1, "a"), created(2, "b"))
	got := rcv.waitFor(t, 2)
	require.Equal(t, "socialhub.catalog.service.created", got[0].Type)
	require.Zero(t, rcv.badSigs.Load())

	rcv.down.Store(true)
	const versions = 6
	for v := int64(2); v <= versions; v++ {
		appendCommitted(t, b.db, b.outbox, updated(1, v, "a"), updated(2, v, "b"), created(int(10*v), "c"))
	}
	require.Eventually(t, func() bool { return rcv.calls.Load() > 8 }, 10*time.Second, 5*time.Millisecond, "retries during the outage")
	// The receiver counts a call when it arrives; the deliverer records the failure after the
	// answer, so the subscription may show it a moment later.
	var sub map[string]any
	require.Eventually(t, func() bool {
		var code int
		code, sub = b.call(t, http.MethodGet, "/v1/subscriptions/"+id, "navigator", nil)
		require.Equal(t, http.StatusOK, code)
		n, _ := sub["consecutive_failures"].(float64)
		return n > 0
	}, 10*time.Second, 10*time.Millisecond, "the outage shows on the subscription")
	require.Equal(t, "active", sub["status"])
	require.Contains(t, sub["last_error"], "503")

	rcv.down.Store(false)
	total := 2 + 3*(versions-1)
	got = rcv.waitFor(t, total)
	require.Len(t, got, total, "each event once after de-duplication")
	last := map[string]int64{}
	var seqsSeen []int64
	for _, p := range got {
		require.Equal(t, last[p.Data.ID]+1, p.Data.Version, "entity %s in order", p.Data.ID)
		last[p.Data.ID] = p.Data.Version
		seqsSeen = append(seqsSeen, p.Data.Seq)
	}
	require.ElementsMatch(t, seqs(b.pollAll(t, 0, "")), seqsSeen, "the same events as the feed")
	require.Zero(t, rcv.badSigs.Load())

	require.Eventually(t, func() bool {
		_, sub = b.call(t, http.MethodGet, "/v1/subscriptions/"+id, "navigator", nil)
		return sub["backlog"] == float64(0) && sub["consecutive_failures"] == float64(0)
	}, 10*time.Second, 10*time.Millisecond)
	require.NotEmpty(t, sub["last_delivery_at"])
	require.EqualValues(t, total, sub["delivered"])
	require.Positive(t, counter(t, b.metrics.WebhookDeliveries.WithLabelValues(changes.DeliveryFailed)))
}

// After a rotation, deliveries carry two signatures: the new secret's and, for the grace period,
// the old one's, so a receiver that still trusts the old secret keeps accepting.
func TestWebhookSecretRotationGrace(t *testing.T) {
	t.Parallel()
	b := setupWebhooks(t)
	rcv := newReceiver(t)
	id, oldSecret := b.subscribe(t, "portal", rcv.srv.URL)
	rcv.trust(oldSecret)
	b.startWorkers(t, 1, changes.DelivererOptions{})
	appendCommitted(t, b.db, b.outbox, created(1, "a"))
	rcv.waitFor(t, 1)

	code, body := b.call(t, http.MethodPost, "/v1/subscriptions/"+id+"/rotate-secret", "portal", nil)
	require.Equal(t, http.StatusOK, code, body)
	newSecret := body["secret"].(string)
	require.NotEqual(t, oldSecret, newSecret)
	require.NotEmpty(t, body["old_secret_valid_until"])

	appendCommitted(t, b.db, b.outbox, updated(1, 2, "a2"))
	rcv.waitFor(t, 2) // still trusting only the old secret
	rcv.trust(newSecret)
	appendCommitted(t, b.db, b.outbox, updated(1, 3, "a3"))
	rcv.waitFor(t, 3) // and now only the new one
	require.Len(t, strings.Fields(rcv.sigs[2]), 2, "signed with both secrets during the grace period")
	require.Zero(t, rcv.badSigs.Load())

	// A rotation without grace: the old secret stops signing at once.
	code, body = b.call(t, http.MethodPost, "/v1/subscriptions/"+id+"/rotate-secret", "portal", map[string]any{"grace_seconds": 0})
	require.Equal(t, http.StatusOK, code, body)
	rcv.trust(newSecret) // the receiver has not learned the newest secret yet
	appendCommitted(t, b.db, b.outbox, updated(1, 4, "a4"))
	require.Eventually(t, func() bool { return rcv.badSigs.Load() > 0 }, 10*time.Second, 5*time.Millisecond)
	rcv.trust(body["secret"].(string))
	rcv.waitFor(t, 4)
}

// A subscription whose receiver keeps failing is paused, shows it, keeps its events, and delivers
// them all in order once resumed.
func TestWebhookPausesAfterFailuresAndResumes(t *testing.T) {
	t.Parallel()
	b := setupWebhooks(t)
	rcv := newReceiver(t)
	id, secret := b.subscribe(t, "chatbot", rcv.srv.URL, "service")
	rcv.trust(secret)
	rcv.down.Store(true)
	b.startWorkers(t, 2, changes.DelivererOptions{MaxFailures: 3})
	appendCommitted(t, b.db, b.outbox, created(1, "a"), location(2, 1, "Марьино"), updated(1, 2, "a2"))

	var sub map[string]any
	require.Eventually(t, func() bool {
		_, sub = b.call(t, http.MethodGet, "/v1/subscriptions/"+id, "chatbot", nil)
		return sub["status"] == "paused"
	}, 10*time.Second, 10*time.Millisecond)
	require.Contains(t, sub["pause_reason"], "3 consecutive delivery failures")
	require.EqualValues(t, 2, sub["backlog"], "the location is filtered out; both service events wait")
	calls := rcv.calls.Load()
	time.Sleep(100 * time.Millisecond) // many retry intervals
	require.Equal(t, calls, rcv.calls.Load(), "a paused subscription is not attempted")
	_, list := b.call(t, http.MethodGet, "/v1/subscriptions", "chatbot", nil)
	require.Len(t, list["subscriptions"], 1)
	require.Equal(t, "paused", list["subscriptions"].([]any)[0].(map[string]any)["status"])

	rcv.down.Store(false)
	code, sub := b.call(t, http.MethodPost, "/v1/subscriptions/"+id+"/resume", "chatbot", nil)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "active", sub["status"])
	got := rcv.waitFor(t, 2)
	require.Equal(t, []int64{1, 2}, []int64{got[0].Data.Version, got[1].Data.Version})
}

// Subscriptions are scoped by owner, and bad input is refused field by field.
func TestSubscriptionsAPI(t *testing.T) {
	t.Parallel()
	b := setupWebhooks(t)
	id, _ := b.subscribe(t, "navigator", "https://example.org/hook", "service.updated", "*.deleted")

	code, _ := b.call(t, http.MethodGet, "/v1/subscriptions/"+id, "someone-else", nil)
	require.Equal(t, http.StatusNotFound, code)
	code, _ = b.call(t, http.MethodDelete, "/v1/subscriptions/"+id, "someone-else", nil)
	require.Equal(t, http.StatusNotFound, code)
	code, _ = b.call(t, http.MethodGet, "/v1/subscriptions", "", nil)
	require.Equal(t, http.StatusUnauthorized, code)
	code, body := b.call(t, http.MethodGet, "/v1/subscriptions/"+id, "navigator", nil)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, []any{"service.updated", "*.deleted"}, body["types"])
	require.NotContains(t, body, "secret", "the secret is shown only once")

	code, body = b.call(t, http.MethodPost, "/v1/subscriptions", "navigator", map[string]any{
		"url": "ftp://x", "types": "service,planet", "district": "Нигде",
	})
	require.Equal(t, http.StatusUnprocessableEntity, code)
	var fields []string
	for _, f := range body["fields"].([]any) {
		fields = append(fields, f.(map[string]any)["field"].(string))
	}
	require.ElementsMatch(t, []string{"url", "types", "district"}, fields)
	code, _ = b.call(t, http.MethodPost, "/v1/subscriptions", "navigator", map[string]any{"url": 5})
	require.Equal(t, http.StatusBadRequest, code)

	code, _ = b.call(t, http.MethodDelete, "/v1/subscriptions/"+id, "navigator", nil)
	require.Equal(t, http.StatusNoContent, code)
	code, _ = b.call(t, http.MethodGet, "/v1/subscriptions/"+id, "navigator", nil)
	require.Equal(t, http.StatusNotFound, code)
}
