package main

import (
	"bytes"
	"context"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"socialhub/connectors"
	"socialhub/internal/api"
)

// fakeSources is the connectors' side of the API, in memory: one source whose run completes after
// a few polls.
type fakeSources struct {
	mu    sync.Mutex
	polls int
	full  bool
}

func (f *fakeSources) Status(context.Context) ([]api.SourceStatus, error) {
	fin := time.Now()
	return []api.SourceStatus{{
		Name: "demo-dszn-points", Kind: "csv", Schedule: "*/15 * * * *",
		LastRun: api.NewRunView(connectors.RunInfo{ID: 1, Source: "demo-dszn-points", StartedAt: fin.Add(-2 * time.Second), FinishedAt: &fin,
			Status: connectors.RunOK, RunCounts: connectors.RunCounts{Read: 246, Emitted: 246}}, fin),
	}}, nil
}

func (f *fakeSources) RunNow(name string, full bool) (int64, error) {
	if name != "demo-dszn-points" {
		return 0, api.ErrUnknownSource
	}
	f.full = full
	return 7, nil
}

func (f *fakeSources) Run(_ context.Context, id int64) (connectors.RunInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.polls++
	r := connectors.RunInfo{ID: id, Source: "demo-dszn-points", StartedAt: time.Now().Add(-time.Second), Status: connectors.RunRunning,
		RunCounts: connectors.RunCounts{Read: int64(100 * f.polls), Emitted: int64(100 * f.polls)}}
	if f.polls >= 3 {
		now := time.Now()
		r.FinishedAt, r.Status = &now, connectors.RunOK
	}
	return r, nil
}

func TestSourcesCommands(t *testing.T) {
	t.Parallel()
	fs := &fakeSources{}
	srv := httptest.NewServer(api.New(api.Options{Sources: fs}))
	defer srv.Close()
	env := func(string) string { return "" }

	var out, errOut bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"sources", "list", "--api", srv.URL}, &out, &errOut, env))
	require.Contains(t, out.String(), "demo-dszn-points")
	require.Contains(t, out.String(), "246")
	require.Contains(t, out.String(), "csv")

	out.Reset()
	require.NoError(t, run(context.Background(), []string{"sources", "run", "demo-dszn-points", "--full", "--api", srv.URL}, &out, &errOut, env))
	require.True(t, fs.full)
	require.Contains(t, out.String(), "run 7 of demo-dszn-points started")
	require.Contains(t, out.String(), "read 300")

	err := run(context.Background(), []string{"sources", "run", "nope", "--api", srv.URL}, &out, &errOut, env)
	require.ErrorContains(t, err, "404")
	err = run(context.Background(), []string{"sources", "run"}, &out, &errOut, env)
	require.ErrorContains(t, err, "needs the name")
	err = run(context.Background(), []string{"sources", "frobnicate"}, &out, &errOut, env)
	require.ErrorContains(t, err, "unknown sources command")
	require.True(t, strings.Contains(errOut.String(), "sources run NAME"))
}
