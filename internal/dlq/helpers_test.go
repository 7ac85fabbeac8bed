package dlq_test

import (
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"socialhub/internal/broker"
	"socialhub/internal/event"
	"socialhub/internal/kafkatest"
	"socialhub/internal/pipeline"
)

// pipelineDeadLetter is the stages' own dead-letter builder.
func pipelineDeadLetter(stage string, m kafka.Message, ev *event.Event, reasons []event.Reason) (kafka.Message, error) {
	return pipeline.DeadLetter(stage, m, ev, reasons, time.Now())
}

func newWriter(t *testing.T, kc *kafkatest.Cluster) *kafka.Writer {
	t.Helper()
	w := broker.NewWriter(kc.Config)
	t.Cleanup(func() { _ = w.Close() })
	return w
}
