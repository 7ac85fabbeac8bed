package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"

	"socialhub/internal/catalog"
	"socialhub/internal/review"
)

const reviewUsage = `Usage:
  socialhub review list [--status open|merged|split|dismissed|all] [--page N] [--per-page N]
  socialhub review show ID       both sides of a pair, the score and the features that agreed
  socialhub review merge ID      they are one: the member's entity merges into the candidate's
  socialhub review split ID      they are not one: taken apart if merged, never proposed again
  socialhub review dismiss ID    they are not one: kept apart, never proposed again

Entity resolution sends pairs whose score falls between its thresholds here. The running hub is
asked through its API (--api, default the configured http.addr), with the bearer token
SOCIALHUB_ADMIN_TOKEN when it is set; --by names the reviewer in the record (default $USER).
`

func cmdReview(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, reviewUsage)
		if len(args) == 0 {
			return usageError{"review needs a command: list, show, merge, split or dismiss"}
		}
		return nil
	}
	sub, args := args[0], args[1:]
	var a apiFlags
	fs := flag.NewFlagSet("socialhub review "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, reviewUsage, "\nFlags:\n"); fs.PrintDefaults() }
	a.register(fs)
	asJSON := fs.Bool("json", false, "print the hub's JSON answer")
	switch sub {
	case "list":
		status := fs.String("status", "open", "open, merged, split, dismissed or all")
		page := fs.Int("page", 1, "page, from 1")
		perPage := fs.Int("per-page", catalog.DefaultPerPage, "items per page")
		if err := parse(fs, args); err != nil {
			return err
		}
		cfg, err := a.load(getenv)
		if err != nil {
			return err
		}
		q := url.Values{"status": {*status}, "page": {strconv.Itoa(*page)}, "per_page": {strconv.Itoa(*perPage)}}
		var list review.ListAnswer
		if err := getJSON(ctx, a.baseURL(cfg)+"/v1/review?"+q.Encode(), getenv("SOCIALHUB_ADMIN_TOKEN"), &list); err != nil {
			return err
		}
		if *asJSON {
			return printJSON(stdout, list)
		}
		return printReviewList(stdout, list)
	case "show", "merge", "split", "dismiss":
		by := fs.String("by", "", "the reviewer's name, for the record (default $USER)")
		pos, err := parseInterspersed(fs, args)
		if err != nil {
			return err
		}
		if len(pos) != 1 {
			fs.Usage()
			return usageError{fmt.Sprintf("review %s needs one review item id", sub)}
		}
		if _, err := strconv.ParseInt(pos[0], 10, 64); err != nil {
			return usageError{fmt.Sprintf("review item id %q is not a number", pos[0])}
		}
		cfg, err := a.load(getenv)
		if err != nil {
			return err
		}
		u := a.baseURL(cfg) + "/v1/review/" + pos[0]
		token := getenv("SOCIALHUB_ADMIN_TOKEN")
		if sub == "show" {
			var it catalog.ReviewItem
			if err := getJSON(ctx, u, token, &it); err != nil {
				return err
			}
			if *asJSON {
				return printJSON(stdout, it)
			}
			return printReviewItem(stdout, it)
		}
		reviewer := *by
		if reviewer == "" {
			reviewer = getenv("USER")
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, u+"/"+sub, nil)
		if err != nil {
			return err
		}
		req.Header.Set("X-Socialhub-Reviewer", reviewer)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := apiClient.Do(req)
		if err != nil {
			return fmt.Errorf("no hub answers at %s (start it with 'socialhub run', or pass --api): %w", a.baseURL(cfg), err)
		}
		defer resp.Body.Close()
		var answer review.DecideAnswer
		if err := decodeAnswer(resp, &answer); err != nil {
			return err
		}
		if *asJSON {
			return printJSON(stdout, answer)
		}
		fmt.Fprintf(stdout, "review item %d: %s (%d catalog changes)\n", answer.Item.ID, answer.Item.Status, answer.Changes)
		return nil
	default:
		fmt.Fprint(stderr, reviewUsage)
		return usageError{fmt.Sprintf("unknown review command %q", sub)}
	}
}

func printReviewList(w io.Writer, list review.ListAnswer) error {
	if len(list.Items) == 0 {
		fmt.Fprintln(w, "no review items")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTYPE\tSTATUS\tSCORE\tMEMBER\tCANDIDATE\tMATCHED")
	for _, it := range list.Items {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%.3f\t%s\t%s\t%s\n", it.ID, it.EntityType, it.Status, it.Score,
			sideLabel(it.Member), sideLabel(it.Candidate), strings.Join(it.Matched, ", "))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if shown := (list.Page-1)*list.PerPage + len(list.Items); shown < list.TotalItems {
		fmt.Fprintf(w, "%d of %d; more: socialhub review list --page %d\n", shown, list.TotalItems, list.Page+1)
	}
	return nil
}

// sideLabel names a side by its source, its id there and its name.
func sideLabel(s catalog.ReviewSide) string {
	var doc struct {
		Name string `json:"name"`
	}
	_ = json.Unmarshal(s.Doc, &doc) // a doc without a name is labelled by its ids
	return fmt.Sprintf("%s/%s «%s»", s.Source, s.LocalID, doc.Name)
}

func printReviewItem(w io.Writer, it catalog.ReviewItem) error {
	fmt.Fprintf(w, "review item %d: %s, %s, score %.3f (matched: %s)\n", it.ID, it.EntityType, it.Status, it.Score, strings.Join(it.Matched, ", "))
	if it.DecidedAt != nil {
		fmt.Fprintf(w, "decided %s by %s\n", it.DecidedAt.Format("2006-01-02 15:04"), it.DecidedBy)
	}
	for _, s := range []struct {
		label string
		side  catalog.ReviewSide
	}{{"member", it.Member}, {"candidate", it.Candidate}} {
		fmt.Fprintf(w, "\n%s %s (%s/%s), now part of %s:\n", s.label, s.side.MemberID, s.side.Source, s.side.LocalID, s.side.CanonicalID)
		if err := printJSON(w, s.side.Doc); err != nil {
			return err
		}
	}
	return nil
}
