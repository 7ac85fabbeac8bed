package changes_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"socialhub/internal/catalog"
	"socialhub/internal/changes"
)

// feedBundle is a relay publishing the outbox plus the feed endpoints on an httptest server.
type feedBundle struct {
	testBundle
	feed     *changes.Feed
	notifier *changes.Notifier
	srv      *httptest.Server
}

func setupFeed(t *testing.T, heartbeat time.Duration) feedBundle {
	t.Helper()
	b := feedBundle{testBundle: setup(t, 2), notifier: changes.NewNotifier()}
	b.feed = changes.NewFeed(b.db.Pool)
	mux := http.NewServeMux()
	changes.NewFeedAPI(changes.FeedAPIOptions{
		Feed: b.feed, Notifier: b.notifier, Heartbeat: heartbeat, PollInterval: 50 * time.Millisecond,
	}).Mount(mux)
	b.srv = httptest.NewServer(mux)
	t.Cleanup(b.srv.Close)
	b.startRelayNotifying(t)
	return b
}

func (b feedBundle) startRelayNotifying(t *testing.T) {
	t.Helper()
	r := changes.NewRelay(changes.RelayOptions{
		Outbox: b.outbox, Producer: b.writer, Topics: b.kafka.Topics, Metrics: b.metrics,
		Logger: discard(), Interval: 5 * time.Millisecond, BatchSize: 100, Notifier: b.notifier,
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

func locationJSON(id, district string) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"id":%q,"name":"ТЦСО","addresses":[{"id":"a","address_1":"ул. Братиславская, д. 14","district":%q}]}`, id, district))
}

func location(n int, version int64, district string) catalog.Change {
	op := catalog.ChangeCreated
	if version > 1 {
		op = catalog.ChangeUpdated
	}
	id := entityID(n)
	return catalog.Change{EntityType: catalog.EntityLocation, EntityID: id, Op: op, Version: version, Doc: locationJSON(id, district)}
}

func (b feedBundle) poll(t *testing.T, query string) (int, changes.FeedPage, map[string]any) {
	t.Helper()
	resp, err := http.Get(b.srv.URL + "/v1/changes?" + query)
	require.NoError(t, err)
	defer resp.Body.Close()
	var raw json.RawMessage
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&raw))
	var page changes.FeedPage
	var body map[string]any
	require.NoError(t, json.Unmarshal(raw, &body))
	if resp.StatusCode == http.StatusOK {
		require.NoError(t, json.Unmarshal(raw, &page))
	}
	return resp.StatusCode, page, body
}

// pollAll follows the feed from after until it is empty.
func (b feedBundle) pollAll(t *testing.T, after int64, extra string) []changes.FeedEvent {
	t.Helper()
	var out []changes.FeedEvent
	for {
		code, page, body := b.poll(t, fmt.Sprintf("after=%d&limit=3%s", after, extra))
		require.Equal(t, http.StatusOK, code, body)
		if len(page.Changes) == 0 {
			return out
		}
		out = append(out, page.Changes...)
		after = page.NextAfter
	}
}

func seqs(evs []changes.FeedEvent) []int64 {
	out := make([]int64, len(evs))
	for i, e := range evs {
		out[i] = e.Seq
	}
	return out
}

// The feed's sequence follows publication, not insertion: a transaction that took seq 1 but
// commits after seq 2 was published appears after it, so a poller resuming after what it saw
// misses nothing.
func TestFeedSequenceFollowsCommitOrder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupFeed(t, time.Second)

	slow, err := b.db.Pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = slow.Rollback(ctx) }()
	require.NoError(t, b.outbox.Append(ctx, slow, []catalog.Change{created(1, "медленная")})) // seq 1
	appendCommitted(t, b.db, b.outbox, created(2, "быстрая"))                                 // seq 2
	b.waitPublished(t, 1)

	first := b.pollAll(t, 0, "")
	require.Len(t, first, 1)
	require.Equal(t, entityID(2), first[0].ID)
	require.EqualValues(t, 2, first[0].OutboxSeq)
	resumeAfter := first[0].Seq

	require.NoError(t, slow.Commit(ctx))
	b.waitPublished(t, 2)
	next := b.pollAll(t, resumeAfter, "")
	require.Len(t, next, 1, "the late commit is not skipped")
	require.Equal(t, entityID(1), next[0].ID)
	require.Greater(t, next[0].Seq, resumeAfter)
	require.Equal(t, "socialhub.catalog.service.created", next[0].Type)
	require.JSONEq(t, string(serviceJSON(entityID(1), "медленная")), string(next[0].Entity))
}

// types and district filter the feed; district comes from the entity's address.
func TestFeedFilters(t *testing.T) {
	t.Parallel()
	b := setupFeed(t, time.Second)
	appendCommitted(t, b.db, b.outbox, created(1, "a"), location(2, 1, "Марьино"), location(3, 1, "Люблино"))
	appendCommitted(t, b.db, b.outbox, updated(1, 2, "a2"), location(2, 2, "Марьино"), deleted(1, 3))
	b.waitPublished(t, 6)

	all := b.pollAll(t, 0, "")
	require.Len(t, all, 6)
	require.Equal(t, []int64{1, 2, 3, 4, 5, 6}, seqs(all))
	require.Equal(t, "Марьино", all[1].District)
	require.Empty(t, all[0].District, "a service has no address of its own")

	ids := func(evs []changes.FeedEvent) []string {
		var out []string
		for _, e := range evs {
			out = append(out, e.Type+"/"+strconv.FormatInt(e.Version, 10))
		}
		return out
	}
	require.Equal(t, []string{"socialhub.catalog.location.created/1", "socialhub.catalog.location.updated/2"},
		ids(b.pollAll(t, 0, "&district=Марьино")))
	require.Equal(t, []string{"socialhub.catalog.service.updated/2", "socialhub.catalog.location.updated/2", "socialhub.catalog.service.deleted/3"},
		ids(b.pollAll(t, 0, "&types=service.updated,*.deleted&types=location.updated")))
	require.Equal(t, []string{"socialhub.catalog.location.created/1"},
		ids(b.pollAll(t, 0, "&types=location.created&district=Люблино")))

	code, _, body := b.poll(t, "types=spaceship&district=Атлантида&limit=0&after=x")
	require.Equal(t, http.StatusBadRequest, code)
	var fields []string
	for _, f := range body["fields"].([]any) {
		fields = append(fields, f.(map[string]any)["field"].(string))
	}
	require.ElementsMatch(t, []string{"after", "limit", "types", "district"}, fields)
}

// Past retention, resuming is refused with 410 Gone by polling and by SSE; retained positions work.
func TestFeedEndOfRetention(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupFeed(t, time.Second)
	appendCommitted(t, b.db, b.outbox, created(1, "a"), created(2, "b"), created(3, "c"))
	b.waitPublished(t, 3)
	appendCommitted(t, b.db, b.outbox, created(4, "d"))
	b.waitPublished(t, 4)
	// Age the first three events past a 1-hour retention.
	_, err := b.db.Pool.Exec(ctx, `UPDATE changes_outbox SET published_at = now() - interval '2 hours' WHERE pub_seq <= 3`)
	require.NoError(t, err)
	n, err := b.feed.Prune(ctx, time.Now().Add(-time.Hour))
	require.NoError(t, err)
	require.EqualValues(t, 3, n)

	code, _, body := b.poll(t, "after=1")
	require.Equal(t, http.StatusGone, code)
	require.Contains(t, body["error"], "older than the change feed's retention")
	code, page, _ := b.poll(t, "after=3")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, []int64{4}, seqs(page.Changes))
	code, page, _ = b.poll(t, "")
	require.Equal(t, http.StatusOK, code, "without after: from the oldest retained event")
	require.Equal(t, []int64{4}, seqs(page.Changes))
	require.EqualValues(t, 3, page.RetainedAfter)

	req, err := http.NewRequest(http.MethodGet, b.srv.URL+"/v1/changes/stream", nil)
	require.NoError(t, err)
	req.Header.Set("Last-Event-ID", "2")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusGone, resp.StatusCode)
}

// sseEvent is one event read from a stream.
type sseEvent struct {
	id, event string
	data      changes.FeedEvent
}

// sseClient reads a stream into a channel of events; comment lines count as heartbeats.
type sseClient struct {
	events     chan sseEvent
	heartbeats chan struct{}
	cancel     context.CancelFunc
}

func openStream(t testing.TB, url, lastEventID string) (*sseClient, *http.Response) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	require.NoError(t, err)
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	c := &sseClient{events: make(chan sseEvent, 10000), heartbeats: make(chan struct{}, 100), cancel: cancel}
	t.Cleanup(func() { cancel(); _ = resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		return c, resp
	}
	go func() {
		defer close(c.events)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var cur sseEvent
		var data string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if data != "" {
					_ = json.Unmarshal([]byte(data), &cur.data)
					if cur.event == "error" {
						cur.data.Type = data
					}
					c.events <- cur
				}
				cur, data = sseEvent{}, ""
			case strings.HasPrefix(line, ":"):
				select {
				case c.heartbeats <- struct{}{}:
				default:
				}
			case strings.HasPrefix(line, "id: "):
				cur.id = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "event: "):
				cur.event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				data = strings.TrimPrefix(line, "data: ")
			}
		}
	}()
	return c, resp
}

func (c *sseClient) next(t testing.TB) sseEvent {
	t.Helper()
	select {
	case e, ok := <-c.events:
		require.True(t, ok, "stream closed")
		return e
	case <-time.After(10 * time.Second):
		require.FailNow(t, "no event on the stream")
		return sseEvent{}
	}
}

// A stream delivers each change with id = its seq, promptly, with heartbeats; a client that
// reconnects with Last-Event-ID gets exactly what follows; SSE and polling see the same sequence.
func TestStreamResumesFromLastEventID(t *testing.T) {
	t.Parallel()
	b := setupFeed(t, 30*time.Millisecond)
	appendCommitted(t, b.db, b.outbox, created(1, "a"), created(2, "b"))
	b.waitPublished(t, 2)

	// Without a position the stream starts at the end: only what comes next.
	live, resp := openStream(t, b.srv.URL+"/v1/changes/stream", "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "text/event-stream; charset=utf-8", resp.Header.Get("Content-Type"))
	select {
	case <-live.heartbeats:
	case <-time.After(5 * time.Second):
		require.FailNow(t, "no heartbeat")
	}
	appendCommitted(t, b.db, b.outbox, updated(1, 2, "a2"), created(3, "c"), updated(2, 2, "b2"))
	var got []sseEvent
	for range 3 {
		got = append(got, live.next(t))
	}
	require.Equal(t, "3", got[0].id)
	require.Equal(t, entityID(1), got[0].data.ID)
	require.Equal(t, []string{"name"}, got[0].data.ChangedFields)

	// The client drops after the first of them and resumes.
	live.cancel()
	resumed, _ := openStream(t, b.srv.URL+"/v1/changes/stream", got[0].id)
	require.Equal(t, "4", resumed.next(t).id)
	require.Equal(t, "5", resumed.next(t).id)
	appendCommitted(t, b.db, b.outbox, deleted(3, 2))
	del := resumed.next(t)
	require.Equal(t, "6", del.id)
	require.Equal(t, "socialhub.catalog.service.deleted", del.data.Type)

	// ?after= works as well, with filters; and polling sees the same sequence.
	filtered, _ := openStream(t, b.srv.URL+"/v1/changes/stream?after=0&types=service.updated", "")
	var streamed []int64
	for range 2 {
		e := filtered.next(t)
		streamed = append(streamed, e.data.Seq)
		require.Equal(t, e.id, strconv.FormatInt(e.data.Seq, 10))
	}
	require.Equal(t, seqs(b.pollAll(t, 0, "&types=service.updated")), streamed)
	polled := seqs(b.pollAll(t, 2, ""))
	require.Equal(t, []int64{3, 4, 5, 6}, polled)
}

// A filtered stream stays behind the feed's head (what it skips moves no position it reports);
// it must still see changes that come after it caught up with everything that matched.
func TestFilteredStreamSeesLaterChanges(t *testing.T) {
	t.Parallel()
	b := setupFeed(t, 30*time.Millisecond)
	appendCommitted(t, b.db, b.outbox, created(1, "a"))
	b.waitPublished(t, 1)
	filtered, _ := openStream(t, b.srv.URL+"/v1/changes/stream?after=0&types=service.updated", "")
	appendCommitted(t, b.db, b.outbox, updated(1, 2, "a2"))
	require.Equal(t, "2", filtered.next(t).id)
	// Changes the filter skips, then one it takes.
	appendCommitted(t, b.db, b.outbox, created(2, "b"), created(3, "c"))
	b.waitPublished(t, 4)
	appendCommitted(t, b.db, b.outbox, updated(2, 2, "b2"))
	e := filtered.next(t)
	require.Equal(t, "5", e.id)
	require.Equal(t, entityID(2), e.data.ID)
}
