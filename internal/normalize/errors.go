package normalize

import "errors"

// ErrSNILS is wrapped by every error SNILS returns, so callers can tell a bad national id from
// other failures with errors.Is; the message says what exactly is wrong.
var ErrSNILS = errors.New("invalid СНИЛС")

var (
	// ErrFormat means the value is not written as the identifier or amount it should be (wrong
	// length, letters, misplaced separators). The message says what was expected.
	ErrFormat = errors.New("malformed value")
	// ErrChecksum means an identifier has the right shape but its control digit does not hold: a
	// typo somewhere in it. Nothing is guessed; the person who keeps the list has to correct it.
	ErrChecksum = errors.New("checksum does not hold")
)

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
