package listings

import "errors"

var (
	// ErrNotFound means no listing or feed has the id.
	ErrNotFound = errors.New("not found")
	// ErrNotOwner means the listing or feed belongs to another client.
	ErrNotOwner = errors.New("belongs to another organization")
	// ErrInvalidFeed means a feed cannot be registered as asked; the message says why.
	ErrInvalidFeed = errors.New("invalid feed")
)
