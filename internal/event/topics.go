package event

// Topics names the hub's Kafka topics (DESIGN.md, "Topics"). The prefix is configurable so several
// hubs, or several tests, can share one cluster.
type Topics struct {
	Raw     string
	Valid   string
	DLQ     string
	Changes string
	Catalog string
}

// DefaultPrefix is the topic prefix when none is configured.
const DefaultPrefix = "socialhub."

// NewTopics returns the topic names under prefix.
func NewTopics(prefix string) Topics {
	return Topics{
		Raw:     prefix + "raw",
		Valid:   prefix + "valid",
		DLQ:     prefix + "dlq",
		Changes: prefix + "changes",
		Catalog: prefix + "catalog",
	}
}

// All lists every topic, in pipeline order.
func (t Topics) All() []string { return []string{t.Raw, t.Valid, t.DLQ, t.Changes, t.Catalog} }

// Compacted reports whether the topic keeps only the latest record per key.
func (t Topics) Compacted(name string) bool { return name == t.Catalog }
