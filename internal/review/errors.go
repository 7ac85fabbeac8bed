package review

import "errors"

// ErrNoPool means Options has no Pool, Catalog or Outbox.
var ErrNoPool = errors.New("review: Pool, Catalog and Outbox are required")
