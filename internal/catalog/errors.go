package catalog

import "errors"

var (
	// ErrNotFound means no entity has the requested id.
	ErrNotFound = errors.New("not found")

	// ErrInvalidRecord means a source record cannot enter the catalog as it is (malformed document,
	// missing ids, unknown op). Retrying it does not help: it belongs in the dead-letter topic.
	ErrInvalidRecord = errors.New("invalid record")
)
