package httpjson

import "errors"

var (
	// ErrNotJSON is returned for a page that is not JSON, or whose items pointer does not name an
	// array; the error carries the URL and the start of the body.
	ErrNotJSON = errors.New("page is not the JSON expected")
	// ErrPaging is returned when the API's paging cannot be followed: it answers the same items
	// again, names the page it was asked for as the next one, or never ends.
	ErrPaging = errors.New("paging cannot be followed")
)
