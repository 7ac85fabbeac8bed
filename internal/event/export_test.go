package event

// UnmarshalWithEncodingJSON is Unmarshal as it was written on encoding/json alone: the envelope
// decoder the compatibility tests compare Unmarshal with.
func UnmarshalWithEncodingJSON(b []byte, e *Event) error {
	return unmarshal(b, e, func([]byte, *Event) bool { return false })
}

// MarshalWithEncodingJSON is Marshal as it was written on encoding/json alone.
func MarshalWithEncodingJSON(e *Event) ([]byte, error) {
	return marshal(e, func([]byte, *Event) ([]byte, bool) { return nil, false })
}
