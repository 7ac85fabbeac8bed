package demo

import (
	"encoding/csv"
	"io"
)

// TruthRow says which real-world thing a generated source record describes. Records of different
// sources with the same TruthID are the same organization (or service point), written each
// source's own way; entity resolution is measured against these rows.
type TruthRow struct {
	EntityType string // "organization", "service", "location"
	Source     string // the demo source's name
	ExternalID string // the record's id at that source
	TruthID    string // the real thing's id in the demo world
}

// TruthHeader is the header of the ground-truth file.
var TruthHeader = []string{"entity_type", "source", "external_id", "truth_id"}

// WriteTruth writes ground-truth rows as CSV with TruthHeader.
func WriteTruth(w io.Writer, rows []TruthRow) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(TruthHeader); err != nil {
		return err
	}
	for _, r := range rows {
		if err := cw.Write([]string{r.EntityType, r.Source, r.ExternalID, r.TruthID}); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}
