package audit

import "errors"

var (
	// ErrBroken means the chain does not verify; the error is a *BrokenError naming the row.
	ErrBroken = errors.New("audit chain broken")

	// ErrInvalidEntry means an entry cannot be appended as it is (no action or outcome).
	ErrInvalidEntry = errors.New("invalid audit entry")
)

// BrokenError names the first row at which the chain breaks.
type BrokenError struct {
	Seq    int64  // the first broken row's sequence number
	Reason string // what does not match
}

func (e *BrokenError) Error() string {
	return "audit chain broken at row " + itoa(e.Seq) + ": " + e.Reason
}

func (e *BrokenError) Unwrap() error { return ErrBroken }
