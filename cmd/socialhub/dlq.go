package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"text/tabwriter"

	"socialhub/internal/dlq"
)

const dlqUsage = `Usage:
  socialhub dlq list [--source S] [--reason R] [--stage S] [--status open|replayed|resolved] [--limit N] [--after CURSOR]
  socialhub dlq show ID                       one dead letter: every reason and the original record
  socialhub dlq replay --source S | ID...     send dead letters through the pipeline again

Records that fail are never dropped: they wait on the dlq topic with their reasons. 'replay' sends
the original of a record validate or resolve rejected back to raw (to be checked with the current
schemas); for a record the connector rejected, and for a whole source (--source), it re-runs the
source in full with its current config. The running hub is asked through its API (--api, default
the configured http.addr), with the bearer token SOCIALHUB_ADMIN_TOKEN when it is set.
`

func cmdDLQ(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, dlqUsage)
		if len(args) == 0 {
			return usageError{"dlq needs a command: list, show or replay"}
		}
		return nil
	}
	sub, args := args[0], args[1:]
	switch sub {
	case "list":
		return cmdDLQList(ctx, args, stdout, stderr, getenv)
	case "show":
		return cmdDLQShow(ctx, args, stdout, stderr, getenv)
	case "replay":
		return cmdDLQReplay(ctx, args, stdout, stderr, getenv)
	default:
		fmt.Fprint(stderr, dlqUsage)
		return usageError{fmt.Sprintf("unknown dlq command %q", sub)}
	}
}

func dlqFlagSet(name string, stderr io.Writer, a *apiFlags) (*flag.FlagSet, *bool) {
	fs := flag.NewFlagSet("socialhub dlq "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, dlqUsage, "\nFlags:\n"); fs.PrintDefaults() }
	a.register(fs)
	return fs, fs.Bool("json", false, "print the hub's JSON answer")
}

// parseInterspersed parses flags wherever they stand among the positional arguments, which it
// returns (flag stops at the first argument that is not a flag).
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func cmdDLQList(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	var a apiFlags
	fs, asJSON := dlqFlagSet("list", stderr, &a)
	source := fs.String("source", "", "only this source's dead letters")
	reason := fs.String("reason", "", "only those with a reason whose field or message contains this text")
	stage := fs.String("stage", "", "only those rejected at this stage (connector, validate, resolve)")
	status := fs.String("status", "", "only those with this status: open, replayed, resolved")
	limit := fs.Int("limit", dlq.DefaultLimit, fmt.Sprintf("how many to list (at most %d)", dlq.MaxLimit))
	after := fs.String("after", "", "the cursor a previous list printed, for the next page")
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := a.load(getenv)
	if err != nil {
		return err
	}
	q := url.Values{}
	for k, v := range map[string]string{"source": *source, "reason": *reason, "stage": *stage, "status": *status, "after": *after} {
		if v != "" {
			q.Set(k, v)
		}
	}
	q.Set("limit", fmt.Sprint(*limit))
	var page dlq.Page
	if err := getJSON(ctx, a.baseURL(cfg)+"/v1/dlq?"+q.Encode(), getenv("SOCIALHUB_ADMIN_TOKEN"), &page); err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, page)
	}
	if len(page.Items) == 0 {
		fmt.Fprintln(stdout, "no dead letters")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTIME\tSOURCE\tSTAGE\tKEY\tSTATUS\tREASONS")
	for _, e := range page.Items {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.ID, e.Time.Local().Format("2006-01-02 15:04:05"), e.Source, e.Stage,
			e.Key, e.Status, reasonSummary(e))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if page.Next != "" {
		fmt.Fprintf(stdout, "\nmore: socialhub dlq list --after %s (with the same filters)\n", page.Next)
	}
	return nil
}

// reasonSummary is the first reason and how many more there are.
func reasonSummary(e dlq.Entry) string {
	if len(e.Reasons) == 0 {
		return "-"
	}
	s := e.Reasons[0].Field + ": " + e.Reasons[0].Message
	if r := []rune(s); len(r) > 80 {
		s = string(r[:79]) + "…"
	}
	if len(e.Reasons) > 1 {
		s += fmt.Sprintf(" (+%d)", len(e.Reasons)-1)
	}
	return s
}

func cmdDLQShow(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	var a apiFlags
	fs, asJSON := dlqFlagSet("show", stderr, &a)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		fs.Usage()
		return usageError{"dlq show needs one dead-letter id"}
	}
	cfg, err := a.load(getenv)
	if err != nil {
		return err
	}
	var e dlq.Entry
	if err := getJSON(ctx, a.baseURL(cfg)+"/v1/dlq/"+url.PathEscape(pos[0]), getenv("SOCIALHUB_ADMIN_TOKEN"), &e); err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, e)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s\t%s\n", k, v)
		}
	}
	row("id", e.ID)
	row("time", e.Time.Local().Format("2006-01-02 15:04:05"))
	row("source", e.Source)
	row("stage", e.Stage)
	row("key", e.Key)
	row("entity type", e.EntityType)
	row("status", e.Status)
	if e.ReplayedAt != nil {
		row("replayed", fmt.Sprintf("%s by %s %s", e.ReplayedAt.Local().Format("2006-01-02 15:04:05"), e.ReplayMode, e.ReplayEventID))
	}
	if e.ResolvedAt != nil {
		row("resolved", e.ResolvedAt.Local().Format("2006-01-02 15:04:05"))
	}
	row("retry of", e.RetryOf)
	row("retried as", e.RetriedAs)
	row("read from", fmt.Sprintf("%s/%d@%d", e.RecordTopic, e.RecordPartition, e.RecordOffset))
	row("dead letter at", fmt.Sprintf("%s/%d@%d", e.DLQTopic, e.DLQPartition, e.DLQOffset))
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "\nreasons:")
	for _, r := range e.Reasons {
		fmt.Fprintf(stdout, "  %s: %s\n", r.Field, r.Message)
	}
	fmt.Fprintln(stdout, "\noriginal record:")
	if len(e.Original) > 0 {
		var buf bytes.Buffer
		if json.Indent(&buf, e.Original, "  ", "  ") == nil {
			fmt.Fprintf(stdout, "  %s\n", buf.String())
			return nil
		}
	}
	fmt.Fprintf(stdout, "  %s\n", e.OriginalText)
	return nil
}

func cmdDLQReplay(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	var a apiFlags
	fs, asJSON := dlqFlagSet("replay", stderr, &a)
	source := fs.String("source", "", "replay every open dead letter of this source (re-runs it in full)")
	ids, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if (len(ids) == 0) == (*source == "") {
		fs.Usage()
		return usageError{"dlq replay needs either --source or dead-letter ids"}
	}
	cfg, err := a.load(getenv)
	if err != nil {
		return err
	}
	body, err := json.Marshal(dlq.Selection{IDs: ids, Source: *source})
	if err != nil {
		return err
	}
	base := a.baseURL(cfg)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/dlq/replay", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if token := getenv("SOCIALHUB_ADMIN_TOKEN"); token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := apiClient.Do(req)
	if err != nil {
		return fmt.Errorf("no hub answers at %s (start it with 'socialhub run', or pass --api): %w", base, err)
	}
	defer resp.Body.Close()
	var res dlq.Result
	if err := decodeAnswer(resp, &res); err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, res)
	}
	fmt.Fprintf(stdout, "replayed %d dead letters\n", res.Replayed)
	for _, r := range res.Reruns {
		fmt.Fprintf(stdout, "  source %s re-runs in full (%d dead letters); follow it with: socialhub sources list\n", r.Source, r.DeadLetters)
	}
	for _, r := range res.Republished {
		fmt.Fprintf(stdout, "  %s sent back to raw as %s\n", r.ID, r.EventID)
	}
	for _, s := range res.Skipped {
		fmt.Fprintf(stdout, "  %s skipped: %s\n", s.ID, s.Reason)
	}
	return nil
}

// printJSON writes v indented, Russian text as it is.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
