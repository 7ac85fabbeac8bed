package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestBenchSmall runs the whole bench at a tiny size: every number is there and plausible.
func TestBenchSmall(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out := filepath.Join(t.TempDir(), "bench.json")
	var stdout, stderr bytes.Buffer
	err := cmdBench(ctx, []string{"--residents", "2000", "--listings", "600", "--lookup-duration", "1s",
		"--lookup-clients", "8", "--fanout-events", "20", "--out", out, "--timeout", "90s"}, &stdout, &stderr, os.Getenv)
	require.NoError(t, err, "stderr:\n%s", stderr.String())
	var rep BenchReport
	b, err := os.ReadFile(out)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &rep))
	require.Equal(t, 2600, rep.Records)
	require.Len(t, rep.Stages, 4)
	require.EqualValues(t, 2600, rep.Stages[0].Records, "the connectors read every record")
	require.Positive(t, rep.EndToEndRecordsPerS)
	require.Positive(t, rep.Baseline.RowsPerS)
	require.Positive(t, rep.RatioToCopy)
	require.Positive(t, rep.Lookup.Requests)
	require.Zero(t, rep.Lookup.Errors)
	require.Positive(t, rep.FanOut.SSEP99Ms)
	require.Positive(t, rep.FanOut.WebhookP99Ms)
	require.Positive(t, rep.PeakRSSBytes)
	require.GreaterOrEqual(t, rep.TimeToZeroLagSeconds, rep.EndToEndSeconds, "lag is zero only once the last stage is done")
	require.Positive(t, rep.CPU.HubMicrosPerRecord)
	require.Positive(t, rep.CPU.PostgresMicrosPerRecord, "the bench reads the PostgreSQL server's CPU time")
	require.Greater(t, rep.CPU.MachineShare, 0.0)
	require.Positive(t, rep.Catalog["service"])
	require.Contains(t, stdout.String(), "hub / COPY")
}
