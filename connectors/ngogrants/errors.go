package ngogrants

import "errors"

// ErrNoSheet is returned when the configured sheet is not in the workbook.
var ErrNoSheet = errors.New("no such sheet in the workbook")
