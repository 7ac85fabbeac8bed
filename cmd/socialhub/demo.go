package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"

	"socialhub/internal/demo"
	"socialhub/internal/hub"
)

// cmdDemoGenerate writes every demo source's data into a directory: what `make run` loads, at any
// size, for trying a configuration or measuring.
func cmdDemoGenerate(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("socialhub demo generate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "demo-data", "directory to write into (created if missing)")
	seed := fs.Int64("seed", 1, "seed: the same seed gives the same files")
	residentsN := fs.Int("residents", 20000, "residents in the registry snapshot")
	listings := fs.Int("listings", 240, "valid rows of the department's service-point list")
	broken := fs.Int("broken", 6, "deliberately broken rows in the department list")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: socialhub demo generate [flags]\n\nWrites the demo sources' data, deterministically from the seed:\n"+
			"  department.csv          the department's service-point list (csv kind)\n"+
			"  residents.csv, .jsonl   a full snapshot of the residents' registry (residents kind, mode snapshot)\n"+
			"  hsds/services-N.json    the pages of a department's HSDS 3.0 feed (hsds kind)\n"+
			"  grants-fpg.xlsx         a grant operator's winners' list (ngogrants kind)\n"+
			"  grants-city.csv         a city grant programme's list, Windows-1251 (ngogrants kind)\n"+
			"  truth.csv               which records of different sources are the same real thing\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if *residentsN < 0 || *listings < 1 || *broken < 0 {
		return usageError{"-listings must be at least 1, -residents and -broken at least 0"}
	}
	if err := os.MkdirAll(filepath.Join(*out, "hsds"), 0o755); err != nil {
		return fmt.Errorf("error creating %s: %w", *out, err)
	}
	dept := demo.Options{Seed: *seed, Rows: *listings, Broken: *broken}
	if *broken == 0 {
		dept.Broken = -1 // the generator reads 0 as its default; the flag means none
	}
	write := func(name string, fn func(w io.Writer) error) error {
		path := filepath.Join(*out, name)
		f, err := os.Create(path)
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
		fmt.Fprintln(stdout, "wrote", path)
		return nil
	}
	err := write("department.csv", func(w io.Writer) error { _, err := demo.WriteDepartmentCSV(w, dept); return err })
	if err != nil {
		return err
	}
	for _, format := range []string{demo.FormatCSV, demo.FormatJSONL} {
		err := write("residents."+format, func(w io.Writer) error { return demo.WriteResidentsSnapshot(w, format, *residentsN, *seed) })
		if err != nil {
			return err
		}
	}
	feedOpts := demo.HSDSFeedOptions{Seed: *seed}
	if err := writeFeedPages(demo.HSDSFeed(feedOpts), write); err != nil {
		return err
	}
	var grantTruth []demo.TruthRow
	for _, g := range []struct {
		file, source string
		seed         int64
		write        func(io.Writer, demo.GrantsOptions) (demo.GrantsManifest, error)
	}{
		{"grants-fpg.xlsx", hub.DemoFPGGrantsSource, *seed, demo.WriteGrantsXLSX},
		{"grants-city.csv", hub.DemoCityGrants, *seed + 1, demo.WriteGrantsCSVWindows1251},
	} {
		err := write(g.file, func(w io.Writer) error {
			man, err := g.write(w, demo.GrantsOptions{Seed: g.seed, Source: g.source, Department: dept})
			grantTruth = append(grantTruth, man.Truth...)
			return err
		})
		if err != nil {
			return err
		}
	}
	truth, err := hub.DemoTruth(dept, feedOpts, grantTruth)
	if err != nil {
		return err
	}
	return write("truth.csv", func(w io.Writer) error { return demo.WriteTruth(w, truth) })
}

// writeFeedPages renders the feed's /services pages into files, as an HSDS API would serve them.
func writeFeedPages(feed http.Handler, write func(string, func(io.Writer) error) error) error {
	for page := 1; ; page++ {
		rec := httptest.NewRecorder()
		feed.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, fmt.Sprintf("/services?page=%d&per_page=100&full=true", page), nil))
		if rec.Code != http.StatusOK {
			return fmt.Errorf("the demo feed answered %d: %s", rec.Code, rec.Body.String())
		}
		body := rec.Body.Bytes()
		if err := write(fmt.Sprintf("hsds/services-%d.json", page), func(w io.Writer) error { _, err := w.Write(body); return err }); err != nil {
			return err
		}
		var p struct {
			LastPage bool `json:"last_page"`
		}
		if err := json.Unmarshal(body, &p); err != nil {
			return fmt.Errorf("the demo feed's page %d is not JSON: %w", page, err)
		}
		if p.LastPage {
			return nil
		}
	}
}
