package export

import (
	"context"
	"sync"
	"time"

	"github.com/plyr-fm/plyrtasks/job"
	"github.com/plyr-fm/plyrtasks/store"
)

// reporter is the progress loop of one running export. The export updates
// its Progress freely (update); every ProgressInterval the loop writes a
// changed Progress to the job row and the task result, or else re-reads the
// row. Either way it learns the row's status: when an API call cancelled the
// job, the loop cancels the export's context with ErrCancelled. Throttling
// here keeps the copy loop free of database round trips.
type reporter struct {
	s      *Service
	id     string
	task   *job.Task
	cancel context.CancelCauseFunc // the export's context

	mu    sync.Mutex
	state State // ExportID, ArtistDID, Status, TaskID, Progress
	dirty bool

	stopc chan struct{}
	done  chan struct{}
}

func newReporter(s *Service, j store.Job, task *job.Task, cancel context.CancelCauseFunc) *reporter {
	return &reporter{
		s: s, id: j.ID, task: task, cancel: cancel,
		state: State{ExportID: j.ID, ArtistDID: j.OwnerDID, Status: store.JobRunning, TaskID: j.TaskID, CreatedAt: j.CreatedAt},
		stopc: make(chan struct{}),
		done:  make(chan struct{}),
	}
}

// start runs the loop until stop.
func (r *reporter) start(ctx context.Context) {
	go func() {
		defer close(r.done)
		t := time.NewTicker(r.s.o.ProgressInterval)
		defer t.Stop()
		for {
			select {
			case <-r.stopc:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				r.tick(ctx)
			}
		}
	}()
}

// stop ends the loop and waits for it; safe to call twice.
func (r *reporter) stop() {
	select {
	case <-r.stopc:
	default:
		close(r.stopc)
	}
	<-r.done
}

// update changes the progress under the lock; the loop publishes it.
func (r *reporter) update(f func(p *Progress)) {
	r.mu.Lock()
	f(&r.state.Progress)
	r.state.Progress.Percent = r.state.Progress.percent()
	r.dirty = true
	r.mu.Unlock()
}

// snapshot returns the current progress.
func (r *reporter) snapshot() Progress {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.state.Progress
}

func (r *reporter) tick(ctx context.Context) {
	r.mu.Lock()
	dirty, st := r.dirty, r.state
	r.dirty = false
	r.mu.Unlock()

	var row store.Job
	var err error
	if dirty {
		p := st.Progress
		phase, msg, pct := string(p.Phase), p.Message, p.Percent
		row, err = r.s.o.Store.UpdateJob(ctx, r.id, store.JobUpdate{
			Progress: &pct, Phase: &phase, Message: &msg, Result: jobData{Progress: p}.encode(),
		})
		r.s.setResult(ctx, r.task, st)
	} else {
		row, err = r.s.o.Store.GetJob(ctx, r.id)
	}
	if err != nil {
		if ctx.Err() == nil {
			r.s.log.WarnContext(ctx, "export progress: job row", "export_id", r.id, "err", err)
		}
		return
	}
	if row.Status == store.JobCancelled {
		r.cancel(ErrCancelled)
	}
}
