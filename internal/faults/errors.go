package faults

import "errors"

// ErrViolation is wrapped by every broken invariant Check reports.
var ErrViolation = errors.New("delivery invariant violated")

// ErrTooFewRecords is returned when too few records flowed between faults to prove anything.
var ErrTooFewRecords = errors.New("too few records flowed between faults")
