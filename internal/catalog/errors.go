package catalog

import "errors"

var (
	// ErrNotFound means no entity has the requested id.
	ErrNotFound = errors.New("not found")

	// ErrInvalidRecord means a source record cannot enter the catalog as it is (malformed document,
	// missing ids, unknown op). Retrying it does not help: it belongs in the dead-letter topic.
	ErrInvalidRecord = errors.New("invalid record")

	// ErrMerged means the entity merged into another: the error is a *RedirectError naming it.
	ErrMerged = errors.New("merged into another entity")

	// ErrBadDecision means a review decision cannot apply (different entity types, one entity
	// already, a member that is not there, nothing to undo).
	ErrBadDecision = errors.New("bad review decision")
)
