package dlq

import "errors"

var (
	// ErrNotFound is returned for a dead-letter id the index does not hold.
	ErrNotFound = errors.New("dead letter not found")
	// ErrInvalidFilter wraps a filter or cursor that cannot be used; the message names the field.
	ErrInvalidFilter = errors.New("invalid dead-letter filter")
	// ErrInvalidSelection is returned by Replay for a selection with neither or both of ids and
	// source.
	ErrInvalidSelection = errors.New("invalid replay selection")
	// ErrSourceBusy is returned by Replay when the source to re-run is running already: the
	// operator retries once it finished, since a run that began before the fix may not hold it.
	ErrSourceBusy = errors.New("source is already running")
)
