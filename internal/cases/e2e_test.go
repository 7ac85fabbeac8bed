package cases_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"socialhub/internal/broker"
	"socialhub/internal/cases"
	"socialhub/internal/changes"
	"socialhub/internal/kafkatest"
	"socialhub/internal/metrics"
)

// subscriber is a webhook receiver that keeps every call, duplicates included.
type subscriber struct {
	mu    sync.Mutex
	calls map[string]int // webhook-id → calls
	got   []changes.WebhookPayload
}

func (s *subscriber) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var p changes.WebhookPayload
	if err := json.NewDecoder(r.Body).Decode(&p); err != nil {
		http.Error(w, "bad json", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id := r.Header.Get("webhook-id")
	s.calls[id]++
	if s.calls[id] == 1 {
		s.got = append(s.got, p)
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *subscriber) received() ([]changes.WebhookPayload, map[string]int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	calls := map[string]int{}
	for k, v := range s.calls {
		calls[k] = v
	}
	return append([]changes.WebhookPayload(nil), s.got...), calls
}

// An operator files an application for a resident of Марьино; it reaches the Марьино centre,
// whose system reports statuses (one twice, one late); the history is complete and in event
// order, and a webhook subscriber sees each change once.
func TestEndToEnd(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	kc := kafkatest.New(t, 1)
	w := broker.NewWriter(kc.Config)
	t.Cleanup(func() { _ = w.Close() })
	m := metrics.New()
	notifier := changes.NewNotifier()
	relay := changes.NewRelay(changes.RelayOptions{Outbox: b.outbox, Producer: w, Topics: kc.Topics, Metrics: m,
		Logger: discard(), Interval: 5 * time.Millisecond, BatchSize: 100, Notifier: notifier})
	deliverer := changes.NewDeliverer(changes.DelivererOptions{Pool: b.db.Pool, Notifier: notifier, Metrics: m, Logger: discard(),
		PollInterval: 10 * time.Millisecond, RetryBase: 5 * time.Millisecond, RetryMax: 40 * time.Millisecond, Timeout: 2 * time.Second})
	sub := &subscriber{calls: map[string]int{}}
	srv := httptest.NewServer(sub)
	t.Cleanup(srv.Close)
	_, _, err := changes.NewSubscriptions(b.db.Pool).Create(ctx, "marino", srv.URL, changes.Filter{Types: []string{cases.EntityApplication}, District: "Марьино"})
	require.NoError(t, err)
	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { require.NoError(t, relay.Run(runCtx)) })
	wg.Go(func() { require.NoError(t, deliverer.Run(runCtx)) })
	t.Cleanup(func() { cancel(); wg.Wait() })

	p := b.addResident(t, snils, "Марьино", "ЮВАО", false)
	code, filed := b.apply(t, "Социальное обслуживание на дому", cases.ChannelPhone, map[string]any{"national_id": snils})
	require.Equal(t, http.StatusCreated, code, filed)
	require.Equal(t, "2026-000001", filed["case_number"])
	require.Equal(t, p, filed["resident"], "the national id is pseudonymized on arrival")
	require.Equal(t, "tcso-marino", filed["organization"].(map[string]any)["id"], "routed to the centre of the resident's district")
	require.Equal(t, cases.StatusSubmitted, filed["status"])
	require.Equal(t, true, filed["eligibility"].(map[string]any)["eligible"])
	id := filed["id"].(string)

	// The centre takes it up: the change event names the case; it reads the case itself.
	got := waitDeliveries(t, sub, 1)
	require.Equal(t, "application", got[0].Data.EntityType)
	require.Equal(t, id, got[0].Data.ID)
	require.NotContains(t, string(got[0].Data.Entity), p, "change events carry no pseudonym")
	code, c := b.call(t, http.MethodGet, "/v1/applications/"+id, b.marino, nil)
	require.Equal(t, http.StatusOK, code, c)
	require.Equal(t, "Нужна помощь на дому после операции", c["request"])

	t0 := b.clock.Now()
	b.clock.Add(31 * time.Hour) // the department's system reports what happened since
	path := "/v1/applications/" + id + "/events"
	post := func(evs ...map[string]any) map[string]any {
		t.Helper()
		code, out := b.call(t, http.MethodPost, path, b.marino, map[string]any{"events": evs})
		require.Equal(t, http.StatusOK, code, out)
		return out
	}
	post(event("m-1", cases.StatusReceived, t0.Add(time.Hour)))
	post(event("m-2", cases.StatusDocumentsRequested, t0.Add(2*time.Hour)))
	out := post(event("m-2", cases.StatusDocumentsRequested, t0.Add(2*time.Hour))) // sent twice
	require.Equal(t, "duplicate", out["events"].([]any)[0].(map[string]any)["outcome"])
	post(event("m-4", cases.StatusUnderReview, t0.Add(26*time.Hour)))
	out = post(event("m-3", cases.StatusDocumentsComplete, t0.Add(25*time.Hour))) // late
	require.Equal(t, cases.StatusUnderReview, out["status"], "a late event does not become the current status")
	// One event with a conflicting repeat of its id is refused whole.
	code, out = b.call(t, http.MethodPost, path, b.marino, event("m-1", cases.StatusApproved, t0.Add(time.Hour)))
	require.Equal(t, http.StatusConflict, code, out)
	post(event("m-5", cases.StatusApproved, t0.Add(30*time.Hour)))

	code, c = b.call(t, http.MethodGet, "/v1/applications/"+id, b.operator, nil)
	require.Equal(t, http.StatusOK, code, c)
	require.Equal(t, []string{cases.StatusSubmitted, cases.StatusReceived, cases.StatusDocumentsRequested,
		cases.StatusDocumentsComplete, cases.StatusUnderReview, cases.StatusApproved}, historyStatuses(t, c))
	require.Equal(t, cases.StatusApproved, c["status"])
	require.EqualValues(t, 6, c["version"])

	// The resident's channel learns the stage in plain Russian and nothing else.
	code, st := b.call(t, http.MethodGet, "/v1/cases/2026-000001", b.bot, nil)
	require.Equal(t, http.StatusOK, code, st)
	require.Equal(t, map[string]any{"case_number": "2026-000001", "status": cases.StatusApproved,
		"stage": cases.StageOf(cases.StatusApproved).Stage, "next_step": cases.StageOf(cases.StatusApproved).NextStep}, st)

	// Each change once: six entries of history, six deliveries, in version order.
	waitDeliveries(t, sub, 6)
	time.Sleep(100 * time.Millisecond) // a duplicate delivery would come now
	got, calls := sub.received()
	require.Len(t, got, 6)
	for id, n := range calls {
		require.Equal(t, 1, n, id)
	}
	var ops []string
	for i, p := range got {
		require.EqualValues(t, i+1, p.Data.Version)
		ops = append(ops, p.Data.Op)
	}
	require.Equal(t, []string{"submitted", "received", "documents_requested", "under_review", "documents_complete", "approved"}, ops)
	var late map[string]any
	require.NoError(t, json.Unmarshal(got[4].Data.Entity, &late))
	require.Equal(t, cases.StatusUnderReview, late["status"], "the late event's change keeps the current status")
	require.Equal(t, []string{"history"}, got[4].Data.ChangedFields)

	// The changes topic holds them too.
	msgs := kc.WaitCount(t, kc.Topics.Changes, 6, 10*time.Second)
	for _, msg := range msgs {
		require.Equal(t, id, string(msg.Key))
		require.True(t, strings.Contains(string(msg.Value), "socialhub.catalog.application."), string(msg.Value))
	}
}

func waitDeliveries(t *testing.T, s *subscriber, n int) []changes.WebhookPayload {
	t.Helper()
	require.Eventually(t, func() bool { got, _ := s.received(); return len(got) >= n }, 20*time.Second, 5*time.Millisecond)
	got, _ := s.received()
	return got
}
