package connectors

import "errors"

var (
	// ErrEndOfInput is returned by Source.Read when the source has nothing more for this run.
	ErrEndOfInput = errors.New("end of input")
	// ErrBackoffRetry wraps a transient failure (network, a locked file, HTTP 5xx): the runner
	// waits and retries the run with exponential back-off instead of giving up.
	ErrBackoffRetry = errors.New("transient source failure, retry after back-off")
	// ErrUnknownKind is returned for a source whose kind is not registered.
	ErrUnknownKind = errors.New("unknown source kind")
	// ErrBadOptions wraps problems in a source's options.
	ErrBadOptions = errors.New("bad source options")
)
