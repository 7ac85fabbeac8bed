package hub

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/jackc/pgx/v5"

	"socialhub/internal/config"
	"socialhub/internal/demo"
	"socialhub/internal/pseudonym"
)

// Names of the demo sources.
const (
	DemoSourceName      = "demo-dszn-points" // the department's service-point list (CSV)
	DemoResidentsSource = "demo-residents"   // the residents' registry (a PostgreSQL table)
	DemoFeedSource      = "demo-trud-hsds"   // a department's HSDS 3.0 feed, served by the hub itself
	DemoFPGGrantsSource = "demo-fpg-grants"  // a presidential-grants winners' list (XLSX)
	DemoCityGrants      = "demo-city-grants" // a city grant programme's list (Windows-1251 CSV)
)

// Demo sizes and seed: small enough that make run has loaded everything within seconds.
const (
	demoSeed      = 1
	demoResidents = 20000
	// DemoFeedPath is where the API serves the demo HSDS feed.
	DemoFeedPath = "/demo/hsds"
)

// demoSetup is what the demo adds to a running hub.
type demoSetup struct {
	sources []config.Source
	// getenv supplies a demo pseudonym key when the environment has none.
	getenv func(string) string
	// feed is the demo HSDS feed, mounted on the API at DemoFeedPath.
	feed http.Handler
}

// DemoSources returns the configs of the demo sources of a hub with the given data directory
// (for status listings; the registry's DSN is left out).
func DemoSources(dataDir string) []config.Source {
	dept, _ := config.NewSource(DemoSourceName, "csv", "*/15 * * * *", map[string]any{"path": filepath.Join(dataDir, "demo", "department.csv")})
	res, _ := config.NewSource(DemoResidentsSource, "residents", "*/5 * * * *", map[string]any{"mode": "table"})
	feed, _ := config.NewSource(DemoFeedSource, "hsds", "*/10 * * * *", map[string]any{"base_url": "http://127.0.0.1" + DemoFeedPath})
	fpg, _ := config.NewSource(DemoFPGGrantsSource, "ngogrants", "0 3 * * *", map[string]any{"path": filepath.Join(dataDir, "demo", "grants-fpg.xlsx")})
	city, _ := config.NewSource(DemoCityGrants, "ngogrants", "0 3 * * *", map[string]any{"path": filepath.Join(dataDir, "demo", "grants-city.csv")})
	return []config.Source{dept, res, feed, fpg, city}
}

// setupDemo writes the demo files on first start (the same seed gives the same data every time),
// loads the demo registry table, and returns the sources that read them.
func setupDemo(ctx context.Context, dataDir, dbURL, apiAddr string, getenv func(string) string, log *slog.Logger) (demoSetup, error) {
	dir := filepath.Join(dataDir, "demo")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return demoSetup{}, fmt.Errorf("error creating demo directory: %w", err)
	}
	var d demoSetup

	// The department's service-point list.
	deptPath := filepath.Join(dir, "department.csv")
	err := writeOnce(deptPath, func(f *os.File) error {
		man, err := demo.WriteDepartmentCSV(f, demo.Options{Seed: demoSeed})
		if err == nil {
			log.Info("demo department list written", "path", deptPath, "valid_rows", len(man.Valid), "broken_rows", len(man.Broken))
		}
		return err
	})
	if err != nil {
		return d, err
	}
	dept, err := config.NewSource(DemoSourceName, "csv", "*/15 * * * *", map[string]any{"path": deptPath})
	if err != nil {
		return d, err
	}

	// The department's HSDS feed, served by the hub's own API.
	feedOpts := demo.HSDSFeedOptions{Seed: demoSeed}
	d.feed = demo.HSDSFeed(feedOpts)
	feed, err := config.NewSource(DemoFeedSource, "hsds", "*/10 * * * *", map[string]any{
		"base_url": "http://" + apiAddr + DemoFeedPath, "per_page": 50, "rate_limit": -1,
	})
	if err != nil {
		return d, err
	}

	// The residents' registry: a table in a database of its own, as the registry's system has.
	regURL, err := ensureRegistry(ctx, dbURL, log)
	if err != nil {
		return d, err
	}
	d.getenv, err = demoKeyEnv(getenv, filepath.Join(dir, "pseudonym.key"), log)
	if err != nil {
		return d, err
	}
	res, err := config.NewSource(DemoResidentsSource, "residents", "*/5 * * * *", map[string]any{
		"mode": "table", "dsn": regURL, "table": demo.DefaultResidentsTable,
	})
	if err != nil {
		return d, err
	}

	// Two grant operators' lists, naming some of the department's institutions their own way.
	grants, truth, err := writeGrantLists(dir, log)
	if err != nil {
		return d, err
	}

	// What is the same real thing across sources, for measuring de-duplication.
	err = writeOnce(filepath.Join(dir, "truth.csv"), func(f *os.File) error {
		rows, err := DemoTruth(demo.Options{Seed: demoSeed}, feedOpts, truth)
		if err != nil {
			return err
		}
		return demo.WriteTruth(f, rows)
	})
	if err != nil {
		return d, err
	}
	d.sources = append([]config.Source{dept, res, feed}, grants...)
	return d, nil
}

// demoGrantLists are the demo's grant lists: an XLSX winners' list and a Windows-1251 CSV.
func demoGrantLists() []struct {
	source, file string
	opts         demo.GrantsOptions
	write        func(io.Writer, demo.GrantsOptions) (demo.GrantsManifest, error)
} {
	return []struct {
		source, file string
		opts         demo.GrantsOptions
		write        func(io.Writer, demo.GrantsOptions) (demo.GrantsManifest, error)
	}{
		{DemoFPGGrantsSource, "grants-fpg.xlsx", demo.GrantsOptions{Seed: demoSeed, Source: DemoFPGGrantsSource, Department: demo.Options{Seed: demoSeed}}, demo.WriteGrantsXLSX},
		{DemoCityGrants, "grants-city.csv", demo.GrantsOptions{Seed: demoSeed + 1, Source: DemoCityGrants, Department: demo.Options{Seed: demoSeed}}, demo.WriteGrantsCSVWindows1251},
	}
}

// writeGrantLists writes the grant lists once and returns their sources and ground truth.
func writeGrantLists(dir string, log *slog.Logger) ([]config.Source, []demo.TruthRow, error) {
	var sources []config.Source
	var truth []demo.TruthRow
	for _, g := range demoGrantLists() {
		path := filepath.Join(dir, g.file)
		// The manifest (and its truth) is rebuilt from the seed every start: the file is the same.
		man, err := g.write(io.Discard, g.opts)
		if err != nil {
			return nil, nil, fmt.Errorf("error generating %s: %w", g.file, err)
		}
		truth = append(truth, man.Truth...)
		err = writeOnce(path, func(f *os.File) error {
			_, err := g.write(f, g.opts)
			if err == nil {
				log.Info("demo grant list written", "path", path, "valid_rows", len(man.Valid), "broken_rows", len(man.Broken))
			}
			return err
		})
		if err != nil {
			return nil, nil, err
		}
		s, err := config.NewSource(g.source, "ngogrants", "0 3 * * *", map[string]any{"path": path})
		if err != nil {
			return nil, nil, err
		}
		sources = append(sources, s)
	}
	return sources, truth, nil
}

// DemoTruth joins the ground truth of every demo source: the department list, the HSDS feed and
// the grant lists (their manifests' truth rows).
func DemoTruth(dept demo.Options, feed demo.HSDSFeedOptions, grants []demo.TruthRow) ([]demo.TruthRow, error) {
	rows, err := demo.HSDSFeedTruth(feed, dept, DemoFeedSource, DemoSourceName)
	if err != nil {
		return nil, err
	}
	deptOrgs, err := demo.DepartmentTruth(DemoSourceName, dept)
	if err != nil {
		return nil, err
	}
	seen := map[demo.TruthRow]bool{}
	var out []demo.TruthRow
	for _, r := range append(append(rows, deptOrgs...), grants...) {
		if !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	return out, nil
}

// ensureRegistry creates and loads the demo registry database the first time and returns its URL.
func ensureRegistry(ctx context.Context, dbURL string, log *slog.Logger) (string, error) {
	u, err := url.Parse(dbURL)
	if err != nil {
		return "", fmt.Errorf("error reading the database URL: %w", err)
	}
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return "", fmt.Errorf("error connecting to create the demo registry: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	// The registry is the hub database's neighbour: "<hub database>_demo_registry".
	demoRegistryDB := strings.TrimPrefix(u.Path, "/") + "_demo_registry"
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, demoRegistryDB).Scan(&exists); err != nil {
		return "", fmt.Errorf("error looking for the demo registry: %w", err)
	}
	regURL := *u
	regURL.Path = "/" + demoRegistryDB
	if exists {
		return regURL.String(), nil
	}
	// Built under a temporary name and renamed, so a crash never leaves a half-loaded registry.
	tmp := pgx.Identifier{demoRegistryDB + "_loading"}.Sanitize()
	if _, err := conn.Exec(ctx, `DROP DATABASE IF EXISTS `+tmp); err != nil {
		return "", fmt.Errorf("error creating the demo registry: %w", err)
	}
	if _, err := conn.Exec(ctx, `CREATE DATABASE `+tmp); err != nil {
		return "", fmt.Errorf("error creating the demo registry database (the hub's database user needs CREATEDB for --demo): %w", err)
	}
	tmpURL := *u
	tmpURL.Path = "/" + demoRegistryDB + "_loading"
	reg, err := pgx.Connect(ctx, tmpURL.String())
	if err != nil {
		return "", fmt.Errorf("error connecting to the demo registry: %w", err)
	}
	err = demo.WriteResidentsTable(ctx, reg, demo.DefaultResidentsTable, demoResidents, demoSeed)
	reg.Close(context.WithoutCancel(ctx))
	if err != nil {
		return "", fmt.Errorf("error loading the demo registry: %w", err)
	}
	if _, err := conn.Exec(ctx, `ALTER DATABASE `+tmp+` RENAME TO `+pgx.Identifier{demoRegistryDB}.Sanitize()); err != nil {
		return "", fmt.Errorf("error creating the demo registry: %w", err)
	}
	log.Info("demo residents' registry loaded", "database", demoRegistryDB, "table", demo.DefaultResidentsTable, "residents", demoResidents)
	return regURL.String(), nil
}

// demoKeyEnv returns a getenv that supplies a demo pseudonym key, kept in path, when the
// environment has none. Real deployments set SOCIALHUB_PSEUDONYM_KEY; the hub refuses a residents
// source without it everywhere but in the demo.
func demoKeyEnv(getenv func(string) string, path string, log *slog.Logger) (func(string) string, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	if getenv(pseudonym.EnvKey) != "" {
		return getenv, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		b = []byte(hex.EncodeToString(key))
		if err := os.WriteFile(path, b, 0o600); err != nil {
			return nil, fmt.Errorf("error writing the demo pseudonym key: %w", err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("error reading the demo pseudonym key: %w", err)
	}
	key := strings.TrimSpace(string(b))
	log.Warn("demo: pseudonymizing with a generated key; set " + pseudonym.EnvKey + " for real data")
	return func(k string) string {
		if k == pseudonym.EnvKey {
			return key
		}
		return getenv(k)
	}, nil
}

// writeOnce writes path with fn unless it exists, through a temporary file, so a crash never
// leaves a half-written file behind.
func writeOnce(path string, fn func(*os.File) error) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("error creating %s: %w", path, err)
	}
	err = fn(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("error writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("error writing %s: %w", path, err)
	}
	return nil
}

// CSVSource builds the config of a csv source reading path with the default column mapping.
func CSVSource(name, path, schedule string) (config.Source, error) {
	return config.NewSource(name, "csv", schedule, map[string]any{"path": path})
}
