package web

import "errors"

// ErrInvalid is a search report the analytics refuse: an unknown category, okrug or district.
var ErrInvalid = errors.New("invalid search report")
