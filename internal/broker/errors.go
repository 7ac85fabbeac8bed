package broker

import "errors"

// ErrNoBrokers is returned when a client is asked for with no broker addresses.
var ErrNoBrokers = errors.New("no Kafka broker addresses")
