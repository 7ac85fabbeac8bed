package listings_test

import (
	"bufio"
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
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"socialhub/internal/changes"
	"socialhub/internal/event"
)

// seen collects change events by "<entity type>/<id>/<op>/<version>" with when they arrived.
type seen struct {
	mu sync.Mutex
	at map[string]time.Time
}

func (s *seen) add(typ, id, op string, version int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := typ + "/" + id + "/" + op + "/" + strconvI(version)
	if _, ok := s.at[k]; !ok {
		s.at[k] = time.Now()
	}
}

func (s *seen) get(k string) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.at[k]
	return t, ok
}

func strconvI(n int64) string { b, _ := json.Marshal(n); return string(b) }

// TestPushReachesEverySubscriberEndToEnd is issue 7's promise: an NGO pushes a listing; a webhook
// receiver gets a correctly signed event within a second; an SSE client and a Kafka consumer of
// changes see the same change; the NGO deletes the listing and all three see the delete.
func TestPushReachesEverySubscriberEndToEnd(t *testing.T) {
	t.Parallel()
	h := startHub(t, hubOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, token := h.ngo(t, "Фонд «Вера»", "7701234567")

	// The webhook receiver checks the Standard Webhooks signature as the spec tells receivers to.
	var secret string
	hooks := &seen{at: map[string]time.Time{}}
	var badSigs int
	var hookMu sync.Mutex
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		hookMu.Lock()
		defer hookMu.Unlock()
		key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(r.Header.Get("webhook-id") + "." + r.Header.Get("webhook-timestamp") + "." + string(body)))
		want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
		if !strings.Contains(" "+r.Header.Get("webhook-signature")+" ", " "+want+" ") {
			badSigs++
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var p changes.WebhookPayload
		if json.Unmarshal(body, &p) != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		hooks.add(p.Data.EntityType, p.Data.ID, p.Data.Op, p.Data.Version)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer recv.Close()
	_, s, err := h.subs.Create(ctx, "navigator", recv.URL, changes.Filter{Types: []string{"service"}})
	require.NoError(t, err)
	hookMu.Lock()
	secret = s
	hookMu.Unlock()

	// An SSE client of the change feed.
	sse := &seen{at: map[string]time.Time{}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.srv.URL+"/v1/changes/stream", nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data:"); ok {
				var e changes.FeedEvent
				if json.Unmarshal([]byte(strings.TrimSpace(data)), &e) == nil {
					sse.add(e.EntityType, e.ID, e.Op, e.Version)
				}
			}
		}
	}()

	// A Kafka consumer of changes.
	kafkaSeen := &seen{at: map[string]time.Time{}}
	reader := kafka.NewReader(kafka.ReaderConfig{Brokers: h.kc.Config.Brokers, GroupID: "navigator", Topic: h.kc.Topics.Changes,
		StartOffset: kafka.FirstOffset, MaxWait: 20 * time.Millisecond})
	defer reader.Close()
	go func() {
		for {
			m, err := reader.FetchMessage(ctx) // a downstream app; the test needs no committed position
			if err != nil {
				return
			}
			var ev event.Event
			if json.Unmarshal(m.Value, &ev) != nil {
				continue
			}
			var d changes.ChangeData
			if json.Unmarshal(ev.Data, &d) == nil {
				kafkaSeen.add(d.EntityType, d.ID, d.Op, d.Version)
			}
		}
	}()

	// A first listing warms the consumer groups up, so the timing below measures the hub, not a
	// group join.
	code, body := h.do(t, http.MethodPut, "/v1/listings/warm-up", token, listing("warm-up", "Консультации юриста"))
	require.Equal(t, http.StatusAccepted, code, body)
	warm := h.status(t, "warm-up", token, "applied")
	require.Eventually(t, func() bool {
		_, ok := hooks.get("service/" + warm["service_id"].(string) + "/created/1")
		return ok
	}, 30*time.Second, 10*time.Millisecond, "the webhook never got the first listing")

	pushed := time.Now()
	code, body = h.do(t, http.MethodPut, "/v1/listings/svc-1", token, listing("svc-1", "Психологическая помощь подросткам"))
	require.Equal(t, http.StatusAccepted, code, body)
	require.Equal(t, "accepted", body["status"])
	st := h.status(t, "svc-1", token, "applied")
	svc := st["service_id"].(string)
	created := "service/" + svc + "/created/1"
	var at time.Time
	require.Eventually(t, func() bool {
		var ok bool
		at, ok = hooks.get(created)
		return ok
	}, 5*time.Second, 5*time.Millisecond, "the webhook never got the listing")
	t.Logf("push to signed webhook: %s", at.Sub(pushed).Round(time.Millisecond))
	require.Less(t, at.Sub(pushed), time.Second, "the webhook got the listing within a second of the push")
	for name, s := range map[string]*seen{"sse": sse, "kafka": kafkaSeen} {
		require.Eventually(t, func() bool { _, ok := s.get(created); return ok }, 5*time.Second, 5*time.Millisecond, "%s never saw the listing", name)
	}

	// The NGO deletes it: all three see the delete.
	code, body = h.do(t, http.MethodDelete, "/v1/listings/svc-1", token, nil)
	require.Equal(t, http.StatusAccepted, code, body)
	h.status(t, "svc-1", token, "deleted")
	deleted := "service/" + svc + "/deleted/2"
	for name, s := range map[string]*seen{"webhook": hooks, "sse": sse, "kafka": kafkaSeen} {
		require.Eventually(t, func() bool { _, ok := s.get(deleted); return ok }, 5*time.Second, 5*time.Millisecond, "%s never saw the delete", name)
	}
	hookMu.Lock()
	require.Zero(t, badSigs)
	hookMu.Unlock()
}
