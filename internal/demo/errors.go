package demo

import "errors"

// ErrBadOptions is returned for options the generator cannot honour, such as negative rows.
var ErrBadOptions = errors.New("bad demo options")
