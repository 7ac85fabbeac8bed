package fetch

import (
	"errors"
	"fmt"
	"time"
)

// ErrTooLarge is returned when a body is over Options.MaxBytes.
var ErrTooLarge = errors.New("input larger than the limit")

// StatusError is an HTTP answer the fetcher did not accept. Transient ones (5xx, 429) also match
// connectors.ErrBackoffRetry with errors.Is.
type StatusError struct {
	URL        string
	StatusCode int
	Status     string
	// RetryAfter is the server's Retry-After, zero when it sent none.
	RetryAfter time.Duration
	transient  bool
	// Body is the start of the answer, to show the operator what the server said.
	Body string
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("%s answered %s", e.URL, e.Status)
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

// Is makes a transient status match connectors.ErrBackoffRetry.
func (e *StatusError) Is(target error) bool { return e.transient && target == backoffRetry }

// RetryAfterOf returns the server's Retry-After carried by err, zero when none.
func RetryAfterOf(err error) time.Duration {
	var se *StatusError
	if errors.As(err, &se) {
		return se.RetryAfter
	}
	return 0
}

// RetryDelay is the server's Retry-After; the runner waits at least this long before retrying.
func (e *StatusError) RetryDelay() time.Duration { return e.RetryAfter }
