package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"socialhub/internal/dlq"
	"socialhub/internal/event"
	"socialhub/internal/pgtest"
	"socialhub/internal/pipeline"
)

// dlqLetter is a dead letter as the validate stage writes it, at dlq offset off.
func dlqLetter(t *testing.T, stage, source, extID string, off int64, reasons ...event.Reason) dlq.Entry {
	t.Helper()
	ev := &event.Event{
		ID: event.NewID(), Source: event.SourceURI(source), Type: event.Type("raw", "service", event.OpUpsert),
		Subject: extID, Time: time.Now().UTC(), EntityType: "service", Op: event.OpUpsert,
		Data: json.RawMessage(`{"name":"Кризисный центр"}`),
	}
	raw, err := event.Marshal(ev)
	require.NoError(t, err)
	m, err := pipeline.DeadLetter(stage, kafka.Message{Topic: "socialhub.raw", Key: []byte(event.Key(source, extID)), Value: raw}, ev, reasons, time.Now())
	require.NoError(t, err)
	m.Topic, m.Offset = "socialhub.dlq", off
	return dlq.EntryOf(m)
}

func TestDLQCommands(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.NewDB(t, dlq.Migrations())
	store := dlq.NewStore(db.Pool)
	a := dlqLetter(t, "validate", "dszn", "1", 0, event.Reason{Field: "email", Message: "не похоже на адрес почты"})
	b := dlqLetter(t, "connector", "grants", "2", 1, event.Reason{Field: "inn", Message: "контрольная сумма ИНН не сходится"})
	c := dlqLetter(t, "validate", "dszn", "3", 2, event.Reason{Field: "name", Message: "обязательное поле"})
	_, err := store.Insert(ctx, []dlq.Entry{a, b, c})
	require.NoError(t, err)
	var reruns []string
	replayer := dlq.NewReplayer(dlq.ReplayerOptions{Store: store, Rerun: func(s string) error { reruns = append(reruns, s); return nil }})
	mux := http.NewServeMux()
	dlq.NewHandler(dlq.HandlerOptions{Store: store, Replayer: replayer, AdminToken: "t0ken"}).Mount(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	env := func(k string) string {
		if k == "SOCIALHUB_ADMIN_TOKEN" {
			return "t0ken"
		}
		return ""
	}
	cli := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := cmdDLQ(ctx, append(args, "--api", srv.URL), &out, &errOut, env)
		return out.String() + errOut.String(), err
	}

	out, err := cli("list", "--source", "dszn", "--reason", "ПОЧТ")
	require.NoError(t, err)
	require.Contains(t, out, a.ID)
	require.Contains(t, out, "email: не похоже на адрес почты")
	require.NotContains(t, out, c.ID)
	out, err = cli("list", "--limit", "1")
	require.NoError(t, err)
	require.Contains(t, out, c.ID)
	require.Contains(t, out, "more: socialhub dlq list --after")
	_, err = cli("list", "--status", "closed")
	require.ErrorContains(t, err, "400")
	require.ErrorContains(t, err, "status: must be one of")
	out, err = cli("list", "--status", "resolved")
	require.NoError(t, err)
	require.Contains(t, out, "no dead letters")

	out, err = cli("show", b.ID)
	require.NoError(t, err)
	require.Contains(t, out, "inn: контрольная сумма ИНН не сходится")
	require.Contains(t, out, "Кризисный центр")
	_, err = cli("show", "нет-такого")
	require.ErrorContains(t, err, "404")
	_, err = cli("show")
	require.ErrorContains(t, err, "needs one dead-letter id")

	_, err = cli("replay")
	require.ErrorContains(t, err, "either --source or dead-letter ids")
	_, err = cli("replay", "--source", "grants", a.ID)
	require.ErrorContains(t, err, "either --source or dead-letter ids")
	_, err = cli("replay", "нет-такого")
	require.ErrorContains(t, err, "ids[0]: no dead letter")
	out, err = cli("replay", "--source", "grants")
	require.NoError(t, err)
	require.Contains(t, out, "replayed 1 dead letters")
	require.Contains(t, out, "source grants re-runs in full")
	require.Equal(t, []string{"grants"}, reruns)
	out, err = cli("list", "--status", "replayed", "--json")
	require.NoError(t, err)
	var page dlq.Page
	require.NoError(t, json.Unmarshal([]byte(out), &page))
	require.Len(t, page.Items, 1)
	require.Equal(t, b.ID, page.Items[0].ID)

	// Without the token the hub refuses, and says so.
	var o, e bytes.Buffer
	err = cmdDLQ(ctx, []string{"list", "--api", srv.URL}, &o, &e, func(string) string { return "" })
	require.ErrorContains(t, err, "401")

	_, err = cli("frobnicate")
	require.ErrorContains(t, err, "unknown dlq command")
	o.Reset()
	e.Reset()
	require.NoError(t, cmdDLQ(ctx, []string{"-h"}, &o, &e, env))
	require.Contains(t, e.String(), "socialhub dlq replay")
}
