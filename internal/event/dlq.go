package event

import "encoding/json"

// Reason is one reason a record was rejected: the field path (JSON path into data, or "(root)",
// or "(envelope)") and a message a person can act on.
type Reason struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// DeadLetter is the data of an event on the dlq topic: the stage that rejected the record, every
// reason, and the original record exactly as it was read, so it can be replayed after a fix.
type DeadLetter struct {
	Stage     string          `json:"stage"`
	Reasons   []Reason        `json:"reasons"`
	Topic     string          `json:"topic"`
	Partition int             `json:"partition"`
	Offset    int64           `json:"offset"`
	Key       string          `json:"key"`
	Original  json.RawMessage `json:"original,omitempty"`
	// OriginalText holds the original bytes when they were not valid JSON (or not valid UTF-8,
	// then with invalid bytes replaced), so nothing is lost and the DLQ stays JSON.
	OriginalText string `json:"original_text,omitempty"`
}

// DeadLetterType is the CloudEvents type of dead-letter events from a stage.
func DeadLetterType(stage string) string { return "socialhub." + stage + ".record.rejected" }
