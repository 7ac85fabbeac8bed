package clients

import "errors"

var (
	// ErrUnauthorized means the token is missing, unknown or revoked.
	ErrUnauthorized = errors.New("no valid bearer token")

	// ErrInvalidClient means a client cannot be created as asked (unknown kind, scope or purpose,
	// a scope the kind may not hold); the message says which.
	ErrInvalidClient = errors.New("invalid client")

	// ErrNotFound means no client has the id.
	ErrNotFound = errors.New("client not found")
)
