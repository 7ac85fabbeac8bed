package hsds

import "errors"

var (
	// ErrNotJSON is returned for a page or a service the feed answered with something that is not
	// the JSON it should be; the error carries the URL and the start of the body.
	ErrNotJSON = errors.New("feed answered with something that is not the expected JSON")
	// ErrPaging is returned when the feed's paging cannot be followed (it ignores the page asked).
	ErrPaging = errors.New("feed paging cannot be followed")
)
