package dlq_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"socialhub/internal/dlq"
	"socialhub/internal/event"
	"socialhub/internal/kafkatest"
	"socialhub/internal/pgtest"
	"socialhub/internal/schedule"
)

// letter builds a dlq message as a stage writes it, at dlq offset off.
func letter(t testing.TB, stage, source, extID string, off int64, reasons ...event.Reason) kafka.Message {
	t.Helper()
	ev := &event.Event{
		ID: event.NewID(), Source: event.SourceURI(source), Type: event.Type("raw", "service", event.OpUpsert),
		Subject: extID, Time: time.Now().UTC(), EntityType: "service", Op: event.OpUpsert,
		Data: json.RawMessage(`{"name":"Семейная медиация"}`),
	}
	raw, err := event.Marshal(ev)
	require.NoError(t, err)
	m, err := pipelineDeadLetter(stage, kafka.Message{Topic: "socialhub.raw", Key: []byte(event.Key(source, extID)), Value: raw, Offset: off}, ev, reasons)
	require.NoError(t, err)
	m.Topic, m.Offset, m.Time = "socialhub.dlq", off, time.Now()
	return m
}

type storeBundle struct {
	store *dlq.Store
	ids   []string // in insertion order
}

func setupStore(t *testing.T) storeBundle {
	t.Helper()
	db := pgtest.NewDB(t, dlq.Migrations())
	s := dlq.NewStore(db.Pool)
	msgs := []kafka.Message{
		letter(t, "validate", "dszn", "1", 0, event.Reason{Field: "email", Message: "не похоже на адрес почты"}),
		letter(t, "validate", "dszn", "2", 1, event.Reason{Field: "name", Message: "Обязательное поле"}, event.Reason{Field: "phones.0.number", Message: "номер не распознан"}),
		letter(t, "resolve", "dszn", "3", 2, event.Reason{Field: "(root)", Message: "catalog refused the record"}),
		letter(t, "connector", "grants", "4", 3, event.Reason{Field: "inn", Message: "контрольная сумма ИНН не сходится"}),
		letter(t, "validate", "grants", "5", 4, event.Reason{Field: "email", Message: "ПОЧТА без @"}),
	}
	b := storeBundle{store: s}
	entries := make([]dlq.Entry, len(msgs))
	for i, m := range msgs {
		entries[i] = dlq.EntryOf(m)
		b.ids = append(b.ids, entries[i].ID)
	}
	n, err := s.Insert(context.Background(), entries)
	require.NoError(t, err)
	require.EqualValues(t, len(msgs), n)
	return b
}

func ids(es []dlq.Entry) []string {
	out := []string{}
	for _, e := range es {
		out = append(out, e.ID)
	}
	return out
}

func TestListFilters(t *testing.T) {
	t.Parallel()
	b := setupStore(t)
	ctx := context.Background()
	list := func(f dlq.Filter) []string {
		p, err := b.store.List(ctx, f)
		require.NoError(t, err)
		return ids(p.Items)
	}
	id := b.ids
	require.Equal(t, []string{id[4], id[3], id[2], id[1], id[0]}, list(dlq.Filter{}), "newest first")
	require.Equal(t, []string{id[2], id[1], id[0]}, list(dlq.Filter{Source: "dszn"}))
	require.Equal(t, []string{id[4], id[1], id[0]}, list(dlq.Filter{Stage: "validate"}))
	require.Equal(t, []string{id[4], id[0]}, list(dlq.Filter{Reason: "EMAIL"}), "a reason's field, any case")
	require.Equal(t, []string{id[4], id[0]}, list(dlq.Filter{Reason: "почт"}), "a reason's message, any case, in Russian")
	require.Equal(t, []string{id[1]}, list(dlq.Filter{Reason: "phones.0"}), "any of the reasons")
	require.Equal(t, []string{id[0]}, list(dlq.Filter{Reason: "email", Source: "dszn", Stage: "validate", Status: dlq.StatusOpen}))
	require.Empty(t, list(dlq.Filter{Status: dlq.StatusResolved}))

	e, err := b.store.Get(ctx, id[3])
	require.NoError(t, err)
	require.Equal(t, "connector", e.Stage)
	require.Equal(t, "grants", e.Source)
	require.Equal(t, "4", e.Subject)
	require.Equal(t, "grants/4", e.Key)
	require.Equal(t, dlq.StatusOpen, e.Status)
	require.Equal(t, []event.Reason{{Field: "inn", Message: "контрольная сумма ИНН не сходится"}}, e.Reasons)
	require.Contains(t, string(e.Original), "Семейная медиация")
	require.Equal(t, "socialhub.dlq", e.DLQTopic)
	require.EqualValues(t, 3, e.DLQOffset)
	require.Equal(t, "socialhub.raw", e.RecordTopic)
	require.NotNil(t, e.RecordTime)
	_, err = b.store.Get(ctx, "нет")
	require.ErrorIs(t, err, dlq.ErrNotFound)

	for _, f := range []dlq.Filter{{Status: "closed"}, {Limit: dlq.MaxLimit + 1}, {Limit: -1}, {After: "abc"}, {After: "-4"}} {
		_, err := b.store.List(ctx, f)
		var fe *dlq.FilterError
		require.ErrorAs(t, err, &fe, "%+v", f)
		require.ErrorIs(t, err, dlq.ErrInvalidFilter)
		require.Len(t, fe.Fields, 1)
	}
}

func TestListPages(t *testing.T) {
	t.Parallel()
	b := setupStore(t)
	ctx := context.Background()
	var got []string
	f := dlq.Filter{Limit: 2}
	pages := 0
	for {
		p, err := b.store.List(ctx, f)
		require.NoError(t, err)
		pages++
		got = append(got, ids(p.Items)...)
		if p.Next == "" {
			break
		}
		require.Len(t, p.Items, 2)
		f.After = p.Next
	}
	require.Equal(t, 3, pages)
	require.Equal(t, []string{b.ids[4], b.ids[3], b.ids[2], b.ids[1], b.ids[0]}, got)
	// A page that ends exactly at the last item has no next.
	p, err := b.store.List(ctx, dlq.Filter{Limit: 5})
	require.NoError(t, err)
	require.Len(t, p.Items, 5)
	require.Empty(t, p.Next)
	// A new dead letter does not shift a page already begun.
	first, err := b.store.List(ctx, dlq.Filter{Limit: 2})
	require.NoError(t, err)
	_, err = b.store.Insert(ctx, []dlq.Entry{dlq.EntryOf(letter(t, "validate", "dszn", "9", 9))})
	require.NoError(t, err)
	next, err := b.store.List(ctx, dlq.Filter{Limit: 2, After: first.Next})
	require.NoError(t, err)
	require.Equal(t, []string{b.ids[2], b.ids[1]}, ids(next.Items))
}

func TestCounts(t *testing.T) {
	t.Parallel()
	b := setupStore(t)
	sources, reasons, err := b.store.Counts(context.Background())
	require.NoError(t, err)
	require.Equal(t, []dlq.SourceCount{{Source: "dszn", Open: 3}, {Source: "grants", Open: 2}}, sources)
	require.Contains(t, reasons, dlq.ReasonCount{Source: "dszn", Field: "email", Open: 1, Total: 1})
	require.Contains(t, reasons, dlq.ReasonCount{Source: "grants", Field: "email", Open: 1, Total: 1})
	require.Contains(t, reasons, dlq.ReasonCount{Source: "dszn", Field: "phones.0.number", Open: 1, Total: 1})
	require.Len(t, reasons, 6)
}

// TestIndexerIsIdempotent: re-delivered dead letters are one row each, and a message on dlq that is
// no dead letter at all is indexed with its reason, never dropped.
func TestIndexerIsIdempotent(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t, dlq.Migrations())
	kc := kafkatest.New(t, 3)
	s := dlq.NewStore(db.Pool)
	ctx := context.Background()
	a := letter(t, "validate", "dszn", "1", 0, event.Reason{Field: "email", Message: "нет @"})
	b := letter(t, "resolve", "dszn", "2", 0, event.Reason{Field: "(root)", Message: "refused"})
	junk := kafka.Message{Key: []byte("dszn/3"), Value: []byte("не JSON \xff")}
	var msgs []kafka.Message
	for _, m := range []kafka.Message{a, b, a, junk, b} {
		msgs = append(msgs, kafka.Message{Topic: kc.Topics.DLQ, Key: m.Key, Value: m.Value})
	}
	w := newWriter(t, kc)
	require.NoError(t, w.WriteMessages(ctx, msgs...))

	run := func() {
		x := dlq.NewIndexer(dlq.IndexerOptions{Store: s, Kafka: kc.Config, Topics: kc.Topics, Logger: quiet})
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- x.Run(rctx) }()
		require.Eventually(t, func() bool {
			p, err := s.List(ctx, dlq.Filter{})
			require.NoError(t, err)
			return len(p.Items) == 3
		}, 30*time.Second, 20*time.Millisecond)
		cancel()
		require.NoError(t, <-done)
	}
	run()
	// A second indexer of a new group reads everything again: nothing new.
	run()
	p, err := s.List(ctx, dlq.Filter{Stage: "unknown"})
	require.NoError(t, err)
	require.Len(t, p.Items, 1)
	bad, err := s.Get(ctx, p.Items[0].ID)
	require.NoError(t, err)
	require.Equal(t, "dszn", bad.Source)
	require.Equal(t, "3", bad.Subject)
	require.Contains(t, bad.Reasons[0].Message, "unreadable")
	require.Contains(t, bad.OriginalText, "не JSON")

	n, err := s.Insert(ctx, []dlq.Entry{dlq.EntryOf(a), dlq.EntryOf(b)})
	require.NoError(t, err)
	require.Zero(t, n, "ON CONFLICT DO NOTHING on the id")
}

// TestReplayConnectorRejections: records the connector rejected are replayed by re-running their
// source once; a busy source fails the request and leaves them open; a source that cannot be re-run
// skips them with the reason.
func TestReplayConnectorRejections(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		rerunErr error
		wantErr  error
		status   string
		skipped  int
	}{
		{name: "ok", status: dlq.StatusReplayed},
		{name: "busy", rerunErr: fmt.Errorf("%w: grants", schedule.ErrAlreadyRunning), wantErr: dlq.ErrSourceBusy, status: dlq.StatusOpen},
		{name: "unknown", rerunErr: fmt.Errorf("%w %q", schedule.ErrUnknownSource, "grants"), status: dlq.StatusOpen, skipped: 2},
		{name: "failing", rerunErr: errors.New("database gone"), wantErr: errors.New(""), status: dlq.StatusOpen},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setupStore(t)
			var calls []string
			r := dlq.NewReplayer(dlq.ReplayerOptions{Store: b.store, Logger: quiet, Rerun: func(src string) error {
				calls = append(calls, src)
				return tc.rerunErr
			}})
			extra := dlq.EntryOf(letter(t, "connector", "grants", "7", 7, event.Reason{Field: "inn", Message: "нет ИНН"}))
			_, err := b.store.Insert(ctx, []dlq.Entry{extra})
			require.NoError(t, err)
			res, err := r.Replay(ctx, dlq.Selection{IDs: []string{b.ids[3], extra.ID}})
			if tc.wantErr != nil {
				require.Error(t, err)
				if tc.wantErr.Error() != "" {
					require.ErrorIs(t, err, tc.wantErr)
				}
			} else {
				require.NoError(t, err)
			}
			require.Equal(t, []string{"grants"}, calls, "one re-run per source")
			require.Len(t, res.Skipped, tc.skipped)
			for _, id := range []string{b.ids[3], extra.ID} {
				e, err := b.store.Get(ctx, id)
				require.NoError(t, err)
				require.Equal(t, tc.status, e.Status)
				if tc.status == dlq.StatusReplayed {
					require.Equal(t, dlq.ModeRerun, e.ReplayMode)
					require.Equal(t, []dlq.Rerun{{Source: "grants", DeadLetters: 2}}, res.Reruns)
				} else {
					require.Nil(t, e.ReplayedAt)
				}
			}
			// Dead letters of the other stages and sources are untouched.
			e, err := b.store.Get(ctx, b.ids[4])
			require.NoError(t, err)
			require.Equal(t, dlq.StatusOpen, e.Status)
		})
	}
}

func TestReplaySelection(t *testing.T) {
	t.Parallel()
	b := setupStore(t)
	r := dlq.NewReplayer(dlq.ReplayerOptions{Store: b.store, Logger: quiet})
	for _, sel := range []dlq.Selection{{}, {IDs: []string{b.ids[0]}, Source: "dszn"}} {
		_, err := r.Replay(context.Background(), sel)
		require.ErrorIs(t, err, dlq.ErrInvalidSelection)
	}
}
