package normalize

import "errors"

// ErrSNILS is wrapped by every error SNILS returns, so callers can tell a bad national id from
// other failures with errors.Is; the message says what exactly is wrong.
var ErrSNILS = errors.New("invalid СНИЛС")

// Sentinels of the contact and text normalizers: each error they return wraps one, and its
// message says what exactly could not be read.
var (
	ErrPhone    = errors.New("invalid phone")
	ErrEmail    = errors.New("invalid e-mail")
	ErrWebsite  = errors.New("invalid website")
	ErrHours    = errors.New("unreadable opening hours")
	ErrDistrict = errors.New("unknown district")
	ErrOkrug    = errors.New("unknown okrug")
)
