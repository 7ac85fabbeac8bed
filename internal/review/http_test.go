package review_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"socialhub/internal/catalog"
	"socialhub/internal/changes"
	"socialhub/internal/pgtest"
	"socialhub/internal/review"
)

type testBundle struct {
	db     *pgtest.DB
	store  *catalog.Store
	outbox *changes.Outbox
	srv    *httptest.Server
}

// setup serves the review API over a catalog where two organizations without an INN, of one name
// and one web site, scored between the thresholds: one open review item. Requests need the
// header X-Operator: yes.
func setup(t *testing.T) testBundle {
	t.Helper()
	db := pgtest.NewDB(t, catalog.Migrations(), changes.Migrations())
	b := testBundle{db: db, store: catalog.NewStore(db.Pool), outbox: changes.NewOutbox(db.Pool)}
	ctx := context.Background()
	for _, r := range []catalog.Record{
		record(t, "dszn-points", "DSZN-1", "ORG-1", "Семейная медиация"),
		record(t, "trud-hsds", "feed-1", "feed-org-1", "Медиация для семей"),
	} {
		tx, err := db.Pool.Begin(ctx)
		require.NoError(t, err)
		_, err = b.store.Apply(ctx, tx, []catalog.Record{r})
		require.NoError(t, err)
		require.NoError(t, tx.Commit(ctx))
	}
	api, err := review.New(review.Options{
		Pool: db.Pool, Catalog: b.store, Outbox: b.outbox,
		Authorize: func(r *http.Request) bool { return r.Header.Get("X-Operator") == "yes" },
	})
	require.NoError(t, err)
	mux := http.NewServeMux()
	api.Mount(mux)
	b.srv = httptest.NewServer(mux)
	t.Cleanup(b.srv.Close)
	return b
}

func record(t *testing.T, source, id, orgID, name string) catalog.Record {
	t.Helper()
	doc := map[string]any{
		"id": id, "name": name, "status": "active",
		"organization": map[string]any{"id": orgID, "name": `ГБУ ТЦСО "Марьино"`, "website": "https://tcso-marino.ru"},
		"service_at_locations": []any{map[string]any{"id": id + "/sal", "location": map[string]any{
			"id": id + "/loc", "name": "Филиал", "latitude": 55.65, "longitude": 37.74,
		}}},
	}
	raw, err := json.Marshal(doc)
	require.NoError(t, err)
	sum := sha256.Sum256(raw)
	return catalog.Record{Source: source, ExternalID: id, Op: catalog.OpUpsert, ContentHash: hex.EncodeToString(sum[:]), Doc: raw, SeenAt: time.Now()}
}

func (b testBundle) do(t *testing.T, method, path string, v any) int {
	t.Helper()
	req, err := http.NewRequest(method, b.srv.URL+path, nil)
	require.NoError(t, err)
	req.Header.Set("X-Operator", "yes")
	req.Header.Set("X-Socialhub-Reviewer", "Иванова")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, "application/json; charset=utf-8", resp.Header.Get("Content-Type"))
	if v != nil {
		require.NoError(t, json.Unmarshal(body, v), string(body))
	}
	return resp.StatusCode
}

func TestReviewListShowMerge(t *testing.T) {
	t.Parallel()
	b := setup(t)
	it := b.organizationItem(t)
	require.Equal(t, catalog.ReviewOpen, it.Status)
	require.Contains(t, it.Matched, "name")
	require.Contains(t, it.Matched, "website")
	require.Greater(t, it.Score, 0.5)
	require.NotEqual(t, it.Member.CanonicalID, it.Candidate.CanonicalID)
	require.Contains(t, string(it.Member.Doc), "Марьино", "both sides as their sources gave them")

	var shown catalog.ReviewItem
	require.Equal(t, http.StatusOK, b.do(t, "GET", "/v1/review/"+itoa(it.ID), &shown))
	require.Equal(t, it.Candidate.Source, shown.Candidate.Source)

	var answer review.DecideAnswer
	require.Equal(t, http.StatusOK, b.do(t, "POST", "/v1/review/"+itoa(it.ID)+"/merge", &answer))
	require.Equal(t, catalog.ReviewMerged, answer.Item.Status)
	require.Equal(t, "Иванова", answer.Item.DecidedBy)
	require.Positive(t, answer.Changes)
	n, err := b.outbox.Count(context.Background())
	require.NoError(t, err)
	require.Positive(t, n, "the merge's changes are in the outbox")
	_, err = b.store.GetOrganization(context.Background(), it.Member.CanonicalID)
	require.ErrorIs(t, err, catalog.ErrMerged)

	// Decided once: no second decision, and the open queue is empty.
	require.Equal(t, http.StatusConflict, b.do(t, "POST", "/v1/review/"+itoa(it.ID)+"/dismiss", nil))
	var list review.ListAnswer
	require.Equal(t, http.StatusOK, b.do(t, "GET", "/v1/review", &list))
	for _, o := range list.Items {
		require.NotEqual(t, it.ID, o.ID)
	}
	require.Equal(t, http.StatusOK, b.do(t, "GET", "/v1/review?status=merged", &list))
	require.Equal(t, it.ID, list.Items[0].ID)
}

func TestReviewDismissKeepsApart(t *testing.T) {
	t.Parallel()
	b := setup(t)
	before, err := b.store.CountReview(context.Background())
	require.NoError(t, err)
	id := itoa(b.organizationItem(t).ID)
	var answer review.DecideAnswer
	require.Equal(t, http.StatusOK, b.do(t, "POST", "/v1/review/"+id+"/dismiss", &answer))
	require.Equal(t, catalog.ReviewDismissed, answer.Item.Status)
	require.Zero(t, answer.Changes)
	n, err := b.store.CountReview(context.Background())
	require.NoError(t, err)
	require.Equal(t, before-1, n)
}

func TestReviewSplitOfAMergedPair(t *testing.T) {
	t.Parallel()
	b := setup(t)
	it := b.organizationItem(t)
	// Merged by hand first (catalog.Merge), then the item says split: the member comes back.
	ctx := context.Background()
	tx, err := b.db.Pool.Begin(ctx)
	require.NoError(t, err)
	_, err = b.store.Merge(ctx, tx, mustUUID(t, it.Candidate.CanonicalID), mustUUID(t, it.Member.CanonicalID), "")
	require.NoError(t, err)
	require.NoError(t, tx.Commit(ctx))
	_, err = b.store.GetOrganization(ctx, it.Member.CanonicalID)
	require.ErrorIs(t, err, catalog.ErrMerged)

	var answer review.DecideAnswer
	require.Equal(t, http.StatusOK, b.do(t, "POST", "/v1/review/"+itoa(it.ID)+"/split", &answer))
	require.Equal(t, catalog.ReviewSplit, answer.Item.Status)
	require.Equal(t, it.Member.CanonicalID, answer.Item.Member.CanonicalID, "back under its original id")
	_, err = b.store.GetOrganization(ctx, it.Member.CanonicalID)
	require.NoError(t, err)
}

func TestReviewBadInput(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var e struct {
		Error  string              `json:"error"`
		Fields []review.FieldError `json:"fields"`
	}
	require.Equal(t, http.StatusBadRequest, b.do(t, "GET", "/v1/review?status=maybe&per_page=0", &e))
	require.Len(t, e.Fields, 2)
	require.Equal(t, http.StatusBadRequest, b.do(t, "GET", "/v1/review/abc", &e))
	require.Equal(t, http.StatusNotFound, b.do(t, "GET", "/v1/review/999", &e))
	require.Equal(t, http.StatusNotFound, b.do(t, "POST", "/v1/review/999/merge", &e))

	req, err := http.NewRequest("GET", b.srv.URL+"/v1/review", strings.NewReader(""))
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "operators only")
}

// organizationItem returns the open review item of the two organizations.
func (b testBundle) organizationItem(t *testing.T) catalog.ReviewItem {
	t.Helper()
	var list review.ListAnswer
	require.Equal(t, http.StatusOK, b.do(t, "GET", "/v1/review", &list))
	for _, it := range list.Items {
		if it.EntityType == catalog.EntityOrganization {
			return it
		}
	}
	t.Fatalf("no organization among %d review items", list.TotalItems)
	return catalog.ReviewItem{}
}
