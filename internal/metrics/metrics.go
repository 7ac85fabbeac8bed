// Package metrics owns the hub's Prometheus metrics: one registry per hub process, and the
// per-stage counters DESIGN's invariant 4 relies on (counts in = counts out, printable at any time).
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Outcomes of a record at a stage.
const (
	OutcomeValid     = "valid"     // validate: passed, written to valid
	OutcomeRejected  = "rejected"  // written to dlq
	OutcomeApplied   = "applied"   // resolve: changed the catalog
	OutcomeUnchanged = "unchanged" // resolve: same content hash, nothing to do
	OutcomeProduced  = "produced"  // connector: written to raw
	OutcomePublished = "published" // relay: written to changes and catalog
)

// Metrics holds the registry and the stage instruments.
type Metrics struct {
	Registry *prometheus.Registry
	// RecordsIn counts records a stage read, by stage and source.
	RecordsIn *prometheus.CounterVec
	// RecordsOut counts records a stage finished with, by stage and outcome.
	RecordsOut *prometheus.CounterVec
	// Lag is the consumer lag in records, by stage and partition.
	Lag *prometheus.GaugeVec
	// ConnectorRuns counts connector runs by source and result.
	ConnectorRuns *prometheus.CounterVec
	// OutboxBacklog is how many change events wait for the relay.
	OutboxBacklog prometheus.Gauge
	// NormalizedFields counts the values the validate stage rewrote into their canonical form
	// (phones to E.164, hours to schedules, districts to the reference names, …), by source and
	// kind of field; field "schedule_unparsed" counts hours kept as text because they could not
	// be read.
	NormalizedFields *prometheus.CounterVec
	// DLQOpen is how many dead letters of a source are open (neither replayed nor resolved).
	DLQOpen *prometheus.GaugeVec
	// WebhookBacklog is how many webhook deliveries wait (fanned out, not yet acknowledged).
	WebhookBacklog prometheus.Gauge
	// WebhookDeliveries counts webhook delivery attempts by result (delivered, failed).
	WebhookDeliveries *prometheus.CounterVec
	// ApplicationsOverdue is how many applications are past the deadline of their stage, by the
	// organization they are routed to (internal/cases).
	ApplicationsOverdue *prometheus.GaugeVec
	// Errors counts failures a stage retried (database or broker unavailable, a receiver's
	// connection refused...), by stage. Bad records are not errors: they are outcome "rejected".
	Errors *prometheus.CounterVec
	// BatchRecords is how many records each transaction of a resolve stage applied, by stage
	// ("resolve", the catalog's group, or "resolve-residents"): batches far below
	// pipeline.batch_size while a stage lags mean it pays a transaction's fixed cost too often.
	BatchRecords *prometheus.HistogramVec
}

// Stages that count errors.
const (
	StageConnector = "connector"
	StageResolve   = "resolve"
	StageRelay     = "relay"
	StageWebhooks  = "webhooks"
	StageDLQ       = "dlq"
)

// Error counts one retried failure of a stage; a nil Metrics counts nothing.
func (m *Metrics) Error(stage string) {
	if m == nil {
		return
	}
	m.Errors.WithLabelValues(stage).Inc()
}

// New creates a registry with Go and process collectors and the hub's instruments.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := &Metrics{
		Registry: reg,
		RecordsIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "socialhub_records_in_total", Help: "Records read by a stage.",
		}, []string{"stage"}),
		RecordsOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "socialhub_records_out_total", Help: "Records a stage finished with, by outcome.",
		}, []string{"stage", "outcome"}),
		Lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "socialhub_consumer_lag", Help: "Records not yet consumed by a stage, per partition.",
		}, []string{"stage", "partition"}),
		ConnectorRuns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "socialhub_connector_runs_total", Help: "Connector runs by source and result.",
		}, []string{"source", "result"}),
		OutboxBacklog: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "socialhub_outbox_backlog", Help: "Change events written but not yet published.",
		}),
		NormalizedFields: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "socialhub_normalized_fields_total", Help: "Values the validate stage normalized, by source and field.",
		}, []string{"source", "field"}),
		DLQOpen: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "socialhub_dlq_open", Help: "Dead letters not yet replayed or resolved, by source.",
		}, []string{"source"}),
		WebhookBacklog: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "socialhub_webhook_backlog", Help: "Webhook deliveries waiting for their receiver.",
		}),
		WebhookDeliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "socialhub_webhook_deliveries_total", Help: "Webhook delivery attempts by result.",
		}, []string{"result"}),
		ApplicationsOverdue: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "socialhub_applications_overdue", Help: "Applications past the deadline of their stage, by organization.",
		}, []string{"organization"}),
		Errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "socialhub_stage_errors_total", Help: "Failures a stage retried, by stage (bad records are rejected, not errors).",
		}, []string{"stage"}),
		BatchRecords: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "socialhub_batch_records", Help: "Records applied per transaction of a resolve stage.",
			Buckets: []float64{1, 10, 50, 100, 250, 500, 1000, 2500, 5000},
		}, []string{"stage"}),
	}
	reg.MustRegister(m.RecordsIn, m.RecordsOut, m.Lag, m.ConnectorRuns, m.OutboxBacklog, m.NormalizedFields)
	reg.MustRegister(m.WebhookBacklog, m.WebhookDeliveries, m.DLQOpen, m.Errors, m.ApplicationsOverdue, m.BatchRecords)
	for _, s := range []string{StageConnector, StageResolve, StageRelay, StageWebhooks, StageDLQ} {
		m.Errors.WithLabelValues(s) // exported at 0 from the start, so rate() and alerts see the series
	}
	return m
}
