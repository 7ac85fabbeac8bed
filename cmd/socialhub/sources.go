package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"socialhub/connectors"
	"socialhub/internal/api"
	"socialhub/internal/config"
	"socialhub/internal/hub"
	"socialhub/internal/store"
)

const sourcesUsage = `Usage:
  socialhub sources [list] [flags]          the kinds, the sources, their last runs and counts
  socialhub sources run NAME [--full] [flags]  run a source now in the running hub, with progress

A running hub is asked through its API (--api, default the configured http.addr); 'list' reads the
database directly when no hub answers. Starting a run needs the hub's SOCIALHUB_ADMIN_TOKEN when it
has one (and is accepted only from the hub's own machine when it has none).
`

func cmdSources(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	sub := "list"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		sub, args = args[0], args[1:]
	}
	switch sub {
	case "list":
		return cmdSourcesList(ctx, args, stdout, stderr, getenv)
	case "run":
		return cmdSourcesRun(ctx, args, stdout, stderr, getenv)
	default:
		fmt.Fprint(stderr, sourcesUsage)
		return usageError{fmt.Sprintf("unknown sources command %q", sub)}
	}
}

// apiFlags are the flags of commands that talk to a running hub.
type apiFlags struct {
	commonFlags
	api string
}

func (a *apiFlags) register(fs *flag.FlagSet) {
	a.commonFlags.register(fs)
	fs.StringVar(&a.api, "api", "", "the running hub's API address (default: the configured http.addr, env SOCIALHUB_HTTP_ADDR)")
}

func (a *apiFlags) baseURL(cfg config.Config) string {
	addr := a.api
	if addr == "" {
		addr = cfg.HTTP.Addr
	}
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	return strings.TrimRight(addr, "/")
}

var apiClient = &http.Client{Timeout: 10 * time.Second}

// getJSON GETs url into v; errNoHub when nothing listens there.
func getJSON(ctx context.Context, url, token string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := apiClient.Do(req)
	if err != nil {
		return fmt.Errorf("%w at %s (start it with 'socialhub run', or pass --api): %w", errNoHub, url, err)
	}
	defer resp.Body.Close()
	return decodeAnswer(resp, v)
}

var errNoHub = errors.New("no hub answers")

func decodeAnswer(resp *http.Response, v any) error {
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		// The hub's errors name the fields that are wrong: say them.
		var e struct {
			Error  string `json:"error"`
			Fields []struct {
				Field   string `json:"field"`
				Message string `json:"message"`
			} `json:"fields"`
		}
		if json.Unmarshal(body, &e) != nil || e.Error == "" {
			return fmt.Errorf("the hub answered %s", resp.Status)
		}
		var parts []string
		for _, f := range e.Fields {
			parts = append(parts, f.Field+": "+f.Message)
		}
		if len(parts) > 0 {
			return fmt.Errorf("the hub answered %s: %s (%s)", resp.Status, e.Error, strings.Join(parts, "; "))
		}
		return fmt.Errorf("the hub answered %s: %s", resp.Status, e.Error)
	}
	return json.Unmarshal(body, v)
}

func cmdSourcesList(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("socialhub sources list", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, sourcesUsage, "\nFlags:\n"); fs.PrintDefaults() }
	var a apiFlags
	a.register(fs)
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := a.load(getenv)
	if err != nil {
		return err
	}
	var answer struct {
		Sources []api.SourceStatus `json:"sources"`
	}
	err = getJSON(ctx, a.baseURL(cfg)+"/v1/sources", "", &answer)
	if errors.Is(err, errNoHub) {
		answer.Sources, err = sourcesFromDatabase(ctx, cfg)
	}
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(answer)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tDESCRIPTION")
	reg := kinds()
	for _, n := range reg.Names() {
		k, _ := reg.Kind(n)
		fmt.Fprintf(tw, "%s\t%s\n", n, k.Description)
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "SOURCE\tKIND\tSCHEDULE\tSTATUS\tLAST RUN\tDURATION\tREAD\tEMITTED\tREJECTED\tDELETED\tNEXT RUN")
	now := time.Now()
	for _, s := range answer.Sources {
		status, last, dur, next := "never ran", "-", "-", "-"
		var n connectors.RunCounts
		if s.LastRun != nil {
			status, last = s.LastRun.Status, s.LastRun.StartedAt.Local().Format("2006-01-02 15:04:05")
			dur = s.LastRun.Duration(now).Round(time.Millisecond).String()
			n = s.LastRun.RunCounts
		}
		if s.Running {
			status = "running"
		}
		if s.NextRun != nil {
			next = s.NextRun.Local().Format("2006-01-02 15:04")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\n", s.Name, s.Kind, dash(s.Schedule), status, last, dur,
			n.Read, n.Emitted, n.Rejected, n.Deleted, next)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, s := range answer.Sources {
		if s.LastRun != nil && s.LastRun.Error != "" {
			fmt.Fprintf(stdout, "\n%s: last error: %s", s.Name, s.LastRun.Error)
		}
	}
	for _, s := range answer.Sources {
		if line := qualityLine(s.Quality); line != "" {
			fmt.Fprintf(stdout, "\n%s: %s", s.Name, line)
		}
	}
	for _, s := range answer.Sources {
		if s.Cursor != nil {
			b, _ := json.Marshal(s.Cursor)
			fmt.Fprintf(stdout, "\n%s: cursor %s", s.Name, b)
		}
	}
	fmt.Fprintln(stdout)
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// sourcesFromDatabase builds the status from the database when no hub runs (no next run times:
// those belong to a running scheduler).
func sourcesFromDatabase(ctx context.Context, cfg config.Config) ([]api.SourceStatus, error) {
	url, stop, err := database(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer stop()
	pool, err := store.Open(ctx, url)
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	if err := store.Migrate(ctx, pool, hub.Migrations()...); err != nil {
		return nil, err
	}
	cp := connectors.NewCheckpoints(pool)
	runs, err := cp.LastRuns(ctx)
	if err != nil {
		return nil, err
	}
	byName := map[string]connectors.RunInfo{}
	for _, r := range runs {
		byName[r.Source] = r
	}
	sources := cfg.Sources
	if cfg.Demo || len(sources) == 0 {
		sources = append(append([]config.Source(nil), sources...), hub.DemoSources(cfg.DataDir)...)
	}
	now := time.Now()
	var out []api.SourceStatus
	for _, s := range sources {
		v := api.SourceStatus{Name: s.Name, Kind: s.Kind, Schedule: s.Schedule}
		if r, ok := byName[s.Name]; ok {
			v.LastRun = api.NewRunView(r, now)
		}
		if pos, err := cp.Load(ctx, s.Name); err == nil && len(pos) > 0 {
			v.Cursor = string(pos)
			if json.Valid(pos) {
				v.Cursor = json.RawMessage(pos)
			}
		}
		out = append(out, v)
	}
	return out, nil
}

func cmdSourcesRun(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("socialhub sources run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, sourcesUsage, "\nFlags:\n"); fs.PrintDefaults() }
	var a apiFlags
	a.register(fs)
	full := fs.Bool("full", false, "read everything again, ignoring the saved position")
	detach := fs.Bool("detach", false, "start the run and return without waiting for it")
	// The name comes first (sources run NAME --full); flags may also precede it.
	var name string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if name == "" && fs.NArg() == 1 {
		name = fs.Arg(0)
	} else if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected arguments: %v", fs.Args())}
	}
	if name == "" {
		fs.Usage()
		return usageError{"sources run needs the name of a source"}
	}
	cfg, err := a.load(getenv)
	if err != nil {
		return err
	}
	base := a.baseURL(cfg)
	token := getenv("SOCIALHUB_ADMIN_TOKEN")
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, fmt.Sprintf("%s/v1/sources/%s/runs?full=%t", base, name, *full), bytes.NewReader(nil))
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := apiClient.Do(req)
	if err != nil {
		return fmt.Errorf("no hub answers at %s (start it with 'socialhub run', or pass --api): %w", base, err)
	}
	var run api.RunView
	err = decodeAnswer(resp, &run)
	resp.Body.Close()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "run %d of %s started\n", run.ID, name)
	if *detach {
		return nil
	}
	return followRun(ctx, base, name, run.ID, stdout)
}

// followRun polls the run until it ends, drawing a progress line on a terminal and a line every
// few seconds otherwise.
func followRun(ctx context.Context, base, name string, id int64, stdout io.Writer) error {
	tty := false
	if f, ok := stdout.(*os.File); ok {
		tty = term.IsTerminal(int(f.Fd()))
	}
	url := fmt.Sprintf("%s/v1/sources/%s/runs/%d", base, name, id)
	spinner := []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}
	lastLine := time.Time{}
	for i := 0; ; i++ {
		var run api.RunView
		if err := getJSON(ctx, url, "", &run); err != nil {
			return err
		}
		rate := 0.0
		if run.DurationSeconds > 0 {
			rate = float64(run.Read) / run.DurationSeconds
		}
		line := fmt.Sprintf("%s read %d · emitted %d · rejected %d · deleted %d · %.0f records/s · %s",
			name, run.Read, run.Emitted, run.Rejected, run.Deleted, rate, time.Duration(run.DurationSeconds*float64(time.Second)).Round(100*time.Millisecond))
		finished := run.Status != connectors.RunRunning
		switch {
		case tty:
			mark := spinner[i%len(spinner)]
			if finished {
				mark = "✓"
				if run.Status != connectors.RunOK {
					mark = "✗"
				}
			}
			fmt.Fprintf(stdout, "\r\033[K%s %s", mark, line)
			if finished {
				fmt.Fprintln(stdout)
			}
		case finished || time.Since(lastLine) > 5*time.Second:
			fmt.Fprintln(stdout, line)
			lastLine = time.Now()
		}
		if finished {
			if run.Status != connectors.RunOK {
				return fmt.Errorf("run %d of %s failed: %s", id, name, run.Error)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			fmt.Fprintln(stdout, "\nstopped following; the run goes on in the hub")
			return nil
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// qualityLine sums up a source's quality figures as the API gives them.
func qualityLine(q any) string {
	b, err := json.Marshal(q)
	if err != nil || q == nil {
		return ""
	}
	var v struct {
		Read, Valid, Rejected int64
		RejectedByField       map[string]int64 `json:"rejected_by_field"`
		Catalog               struct {
			Records int64
			Share   map[string]float64
		}
	}
	if json.Unmarshal(b, &v) != nil {
		return ""
	}
	line := fmt.Sprintf("validated %d: %d valid, %d rejected", v.Read, v.Valid, v.Rejected)
	if len(v.RejectedByField) > 0 {
		fields := make([]string, 0, len(v.RejectedByField))
		for f, n := range v.RejectedByField {
			fields = append(fields, fmt.Sprintf("%s %d", f, n))
		}
		sort.Strings(fields)
		line += " (" + strings.Join(fields, ", ") + ")"
	}
	if v.Catalog.Records > 0 {
		line += fmt.Sprintf("; %d catalog records, with phone %.0f%%, address %.0f%%, hours %.0f%%, coordinates %.0f%%",
			v.Catalog.Records, 100*v.Catalog.Share["phone"], 100*v.Catalog.Share["address"], 100*v.Catalog.Share["hours"], 100*v.Catalog.Share["coordinates"])
	}
	return line
}
