package changes

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"time"
)

// feedCacheSize is how many recent events a process keeps for its streams.
const feedCacheSize = 4096

// feedCache keeps the most recent feed events of this process, unfiltered, so that streams that
// are caught up — the usual case, and there may be hundreds — share one query per publication
// instead of one each: the first stream to ask for news reads them from PostgreSQL, the others
// wait for that read and take the events from memory. Streams resuming from further back than the
// cache holds read PostgreSQL themselves.
type feedCache struct {
	feed     *Feed
	notifier *Notifier
	poll     time.Duration

	mu       sync.Mutex
	events   []FeedEvent // contiguous pub_seqs, oldest first
	head     int64       // the last pub_seq read (events may be empty, or trimmed)
	loaded   bool
	loading  chan struct{}   // closed when the read in progress ends; nil when none
	wake     <-chan struct{} // the notifier's channel when the last read began
	loadedAt time.Time
}

func newFeedCache(feed *Feed, n *Notifier, poll time.Duration) *feedCache {
	return &feedCache{feed: feed, notifier: n, poll: poll}
}

// read returns up to limit events after `after` that match f, like Feed.Read.
func (c *feedCache) read(ctx context.Context, after int64, limit int, f Filter) ([]FeedEvent, error) {
	for {
		c.mu.Lock()
		if !c.loaded || after < c.head {
			evs, ok := c.fromMemory(after, limit, f)
			if ok && (len(evs) > 0 || !c.stale()) {
				c.mu.Unlock()
				return evs, nil
			}
			c.mu.Unlock()
			if !ok && c.loaded {
				return c.feed.Read(ctx, after, limit, f) // older than the cache holds
			}
			// Nothing in memory matches a filtered reader, which therefore stays behind the head:
			// when news may exist it must refresh like a caught-up reader, or it never sees more.
		} else if !c.stale() {
			c.mu.Unlock()
			return nil, nil // caught up, and nothing was published since the last look
		} else {
			c.mu.Unlock()
		}
		if err := c.refresh(ctx); err != nil {
			if errors.Is(err, ErrGone) {
				return c.feed.Read(ctx, after, limit, f)
			}
			return nil, err
		}
		c.mu.Lock()
		caughtUp := after >= c.head
		evs, ok := c.fromMemory(after, limit, f)
		c.mu.Unlock()
		if caughtUp {
			return nil, nil
		}
		if ok {
			return evs, nil // what the refresh brought, matching or not: no second refresh now
		}
	}
}

// fromMemory serves a read from the cache when it covers `after`; c.mu is held.
func (c *feedCache) fromMemory(after int64, limit int, f Filter) ([]FeedEvent, bool) {
	if !c.loaded || len(c.events) == 0 || after < c.events[0].Seq-1 {
		return nil, false
	}
	var out []FeedEvent
	for i := int(after - c.events[0].Seq + 1); i < len(c.events) && len(out) < limit; i++ {
		if f.match(&c.events[i]) {
			out = append(out, c.events[i])
		}
	}
	return out, true
}

// stale reports whether news may exist: a publication was announced since the last read, or the
// polling interval passed; c.mu is held.
func (c *feedCache) stale() bool {
	if time.Since(c.loadedAt) >= c.poll {
		return true
	}
	select {
	case <-c.wake:
		return true
	default:
		return c.wake == nil
	}
}

// refresh reads what was published after the cache's head, once for everyone waiting.
func (c *feedCache) refresh(ctx context.Context) error {
	c.mu.Lock()
	if ch := c.loading; ch != nil {
		c.mu.Unlock()
		select {
		case <-ch:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	ch := make(chan struct{})
	c.loading = ch
	head, loaded := c.head, c.loaded
	wake := c.notifier.C()
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.loading = nil
		c.mu.Unlock()
		close(ch)
	}()
	if !loaded {
		pruned, last, err := c.feed.Bounds(ctx)
		if err != nil {
			return err
		}
		// Start near the end: streams resuming further back read PostgreSQL.
		head = max(pruned, last-feedCacheSize/2)
	}
	var fresh []FeedEvent
	for {
		evs, err := c.feed.Read(ctx, head, MaxLimit, Filter{})
		if errors.Is(err, ErrGone) {
			c.mu.Lock()
			c.events, c.loaded = nil, false // start over from the retained end
			c.mu.Unlock()
			return err
		}
		if err != nil {
			return err
		}
		fresh = append(fresh, evs...)
		if len(evs) > 0 {
			head = evs[len(evs)-1].Seq
		}
		if len(evs) < MaxLimit {
			break
		}
	}
	// Encoded here, once, rather than by each of the streams that send it.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	for i := range fresh {
		buf.Reset()
		writeFrame(&buf, enc, &fresh[i])
		fresh[i].frame = bytes.Clone(buf.Bytes())
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(fresh) > 0 && len(c.events) > 0 && fresh[0].Seq != c.events[len(c.events)-1].Seq+1 {
		c.events = nil // not contiguous (cannot happen with dense pub_seqs): keep only what is sure
	}
	c.events = append(c.events, fresh...)
	if n := len(c.events); n > feedCacheSize {
		c.events = slices.Clone(c.events[n-feedCacheSize:])
	}
	if !c.loaded && len(c.events) == 0 {
		// Nothing retained after head yet: an empty cache still covers positions from head on.
		c.events = nil
	}
	c.head, c.loaded, c.wake, c.loadedAt = head, true, wake, time.Now()
	return nil
}

// match reports whether the filter selects an event (the same rules as Feed.Read's SQL).
func (f Filter) match(e *FeedEvent) bool {
	if f.District != "" && e.District != f.District {
		return false
	}
	if len(f.Types) == 0 {
		return true
	}
	for _, t := range f.Types {
		if t == e.EntityType || t == e.EntityType+"."+e.Op || t == "*."+e.Op {
			return true
		}
	}
	return false
}
