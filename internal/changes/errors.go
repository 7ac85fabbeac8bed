package changes

import "errors"

var (
	// ErrGone means the requested position is older than the feed's retention: the events after
	// it were pruned and cannot be replayed from the hub (bootstrap from the catalog topic or the
	// HSDS API instead).
	ErrGone = errors.New("position is older than the retained change feed")
	// ErrNotFound means no such subscription (for this owner).
	ErrNotFound = errors.New("subscription not found")
	// ErrInvalid means a request failed validation.
	ErrInvalid = errors.New("invalid request")
)
