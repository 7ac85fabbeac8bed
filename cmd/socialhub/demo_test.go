package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDemoGenerateIsDeterministic(t *testing.T) {
	t.Parallel()
	gen := func(seed string) string {
		dir := t.TempDir()
		var out, errOut bytes.Buffer
		require.NoError(t, run(context.Background(), []string{"demo", "generate", "--out", dir, "--residents", "50", "--listings", "30", "--seed", seed}, &out, &errOut, os.Getenv))
		return dir
	}
	a, b, c := gen("5"), gen("5"), gen("6")
	for _, name := range []string{"department.csv", "residents.csv", "residents.jsonl", "hsds/services-1.json", "grants-fpg.xlsx", "grants-city.csv", "truth.csv"} {
		x, err := os.ReadFile(filepath.Join(a, name))
		require.NoError(t, err)
		require.NotEmpty(t, x, name)
		y, err := os.ReadFile(filepath.Join(b, name))
		require.NoError(t, err)
		require.Equal(t, string(x), string(y), "%s differs between two runs with the same seed", name)
	}
	x, _ := os.ReadFile(filepath.Join(a, "residents.csv"))
	z, _ := os.ReadFile(filepath.Join(c, "residents.csv"))
	require.NotEqual(t, string(x), string(z), "another seed gives other residents")
	err := run(context.Background(), []string{"demo", "generate", "--listings", "0"}, &bytes.Buffer{}, &bytes.Buffer{}, os.Getenv)
	require.Error(t, err)
}
