package match

import "errors"

// ErrBadConfig means a Config cannot be used as it is (thresholds out of order, negative weights).
var ErrBadConfig = errors.New("bad resolution config")
