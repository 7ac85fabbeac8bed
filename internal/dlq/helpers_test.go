package dlq_test

import (
	"time"

	"github.com/segmentio/kafka-go"

	"socialhub/internal/event"
	"socialhub/internal/pipeline"
)

// pipelineDeadLetter is the stages' own dead-letter builder.
func pipelineDeadLetter(stage string, m kafka.Message, ev *event.Event, reasons []event.Reason) (kafka.Message, error) {
	return pipeline.DeadLetter(stage, m, ev, reasons, time.Now())
}
