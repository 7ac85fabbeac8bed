package hub

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"socialhub/connectors"
	"socialhub/internal/api"
	"socialhub/internal/quality"
	"socialhub/internal/schedule"
)

// sourceStatus joins what the scheduler knows (running, next run) with what the checkpoint store
// holds (last run, cursor) for the API.
type sourceStatus struct {
	sched       *schedule.Scheduler
	checkpoints *connectors.Checkpoints
	quality     *quality.Store
}

func (s sourceStatus) Status(ctx context.Context) ([]api.SourceStatus, error) {
	runs, err := s.checkpoints.LastRuns(ctx)
	if err != nil {
		return nil, err
	}
	last := make(map[string]connectors.RunInfo, len(runs))
	for _, r := range runs {
		last[r.Source] = r
	}
	now := time.Now()
	var out []api.SourceStatus
	for _, st := range s.sched.States() {
		v := api.SourceStatus{Name: st.Source.Name, Kind: st.Source.Kind, Schedule: st.Source.Schedule, Running: st.Running}
		if !st.Next.IsZero() {
			next := st.Next
			v.NextRun = &next
		}
		if r, ok := last[st.Source.Name]; ok {
			v.LastRun = api.NewRunView(r, now)
		}
		if s.quality != nil {
			q, err := s.quality.SourceQuality(ctx, st.Source.Name)
			switch {
			case err == nil:
				v.Quality = q
			case !errors.Is(err, quality.ErrUnknownSource):
				return nil, err
			}
		}
		pos, err := s.checkpoints.Load(ctx, st.Source.Name)
		if err != nil {
			return nil, err
		}
		if len(pos) > 0 {
			if json.Valid(pos) {
				v.Cursor = json.RawMessage(pos)
			} else {
				v.Cursor = string(pos)
			}
		}
		out = append(out, v)
	}
	return out, nil
}

func (s sourceStatus) RunNow(name string, full bool) (int64, error) {
	id, err := s.sched.RunNow(name, full)
	switch {
	case errors.Is(err, schedule.ErrUnknownSource):
		return 0, errors.Join(api.ErrUnknownSource, err)
	case errors.Is(err, schedule.ErrAlreadyRunning):
		return 0, errors.Join(api.ErrSourceBusy, err)
	case errors.Is(err, schedule.ErrNotStarted):
		return 0, api.ErrNotRunningConnectors
	}
	return id, err
}

func (s sourceStatus) Run(ctx context.Context, id int64) (connectors.RunInfo, error) {
	return s.checkpoints.Run(ctx, id)
}
