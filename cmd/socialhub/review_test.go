package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"socialhub/internal/catalog"
	"socialhub/internal/changes"
	"socialhub/internal/pgtest"
	"socialhub/internal/review"
)

// reviewRecord is a service record whose organization has no INN: two of one name and web site
// score between the thresholds.
func reviewRecord(t *testing.T, source, id, orgID string) catalog.Record {
	t.Helper()
	raw, err := json.Marshal(map[string]any{
		"id": id, "name": "Семейная медиация", "status": "active",
		"organization": map[string]any{"id": orgID, "name": `ГБУ ТЦСО "Марьино"`, "website": "https://tcso-marino.ru"},
	})
	require.NoError(t, err)
	sum := sha256.Sum256(raw)
	return catalog.Record{Source: source, ExternalID: id, Op: catalog.OpUpsert, ContentHash: hex.EncodeToString(sum[:]), Doc: raw, SeenAt: time.Now()}
}

func TestReviewCommands(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.NewDB(t, catalog.Migrations(), changes.Migrations())
	store := catalog.NewStore(db.Pool)
	for _, r := range []catalog.Record{reviewRecord(t, "dszn-points", "DSZN-1", "ORG-1"), reviewRecord(t, "trud-hsds", "feed-1", "feed-org-1")} {
		tx, err := db.Pool.Begin(ctx)
		require.NoError(t, err)
		_, err = store.Apply(ctx, tx, []catalog.Record{r})
		require.NoError(t, err)
		require.NoError(t, tx.Commit(ctx))
	}
	api, err := review.New(review.Options{
		Pool: db.Pool, Catalog: store, Outbox: changes.NewOutbox(db.Pool),
		Authorize: func(r *http.Request) bool { return r.Header.Get("Authorization") == "Bearer t0ken" },
	})
	require.NoError(t, err)
	mux := http.NewServeMux()
	api.Mount(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	env := func(k string) string {
		switch k {
		case "SOCIALHUB_ADMIN_TOKEN":
			return "t0ken"
		case "USER":
			return "ivanova"
		}
		return ""
	}
	cli := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := cmdReview(ctx, append(args, "--api", srv.URL), &out, &errOut, env)
		return out.String() + errOut.String(), err
	}

	out, err := cli("list")
	require.NoError(t, err)
	require.Contains(t, out, "organization")
	require.Contains(t, out, "dszn-points/ORG-1 «ГБУ ТЦСО \"Марьино\"»")
	require.Contains(t, out, "website")
	id := regexp.MustCompile(`(?m)^(\d+)\s+organization`).FindStringSubmatch(out)
	require.NotNil(t, id, out)

	out, err = cli("show", id[1])
	require.NoError(t, err)
	require.Contains(t, out, "member ")
	require.Contains(t, out, "candidate ")
	require.Contains(t, out, "score 0.")

	out, err = cli("merge", id[1])
	require.NoError(t, err)
	require.Regexp(t, `review item \d+: merged \(\d+ catalog changes\)`, out)
	out, err = cli("show", id[1])
	require.NoError(t, err)
	require.Contains(t, out, "by ivanova")

	out, err = cli("split", id[1], "--by", "petrov")
	require.NoError(t, err)
	require.Contains(t, out, "split")
	_, err = cli("dismiss", id[1])
	require.ErrorContains(t, err, "409")

	out, err = cli("list", "--status", "all", "--json")
	require.NoError(t, err)
	var list review.ListAnswer
	require.NoError(t, json.Unmarshal([]byte(out), &list))
	require.NotEmpty(t, list.Items)

	_, err = cli("show", "abc")
	require.Error(t, err)
	_, err = cli("frobnicate")
	require.Error(t, err)
	err = cmdReview(ctx, nil, &bytes.Buffer{}, &bytes.Buffer{}, env)
	require.Error(t, err)
}
