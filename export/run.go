package export

import (
	"context"
	"errors"
	"fmt"

	"github.com/plyr-fm/plyrtasks/job"
	"github.com/plyr-fm/plyrtasks/store"
	"github.com/plyr-fm/plyrtasks/tasks"
)

// errSkip ends Run without doing anything: the job already finished.
var errSkip = errors.New("export already finished")

// Run executes one attempt of an export:media task: the body of its
// handler. t may be nil (no task result, first attempt).
//
// How it ends, and what the job row says afterwards:
//   - success: done, with the Result; returns nil.
//   - the row was cancelled (Cancel): the upload is aborted, the row stays
//     cancelled; returns a permanent ErrCancelled so the task is not retried.
//   - ctx cancelled otherwise (worker shutdown, or asynq's own cancel): the
//     upload is aborted and the row goes back to pending; returns ctx's
//     error. A shutdown requeues the task and the next run starts over.
//   - any other error: the upload is aborted; on the last attempt (or a
//     permanent error) the row is failed with the reason, otherwise it is
//     pending with the reason as its message while the task waits to retry.
//
// A task whose job is already done, failed or cancelled returns at once
// (nil for done, a permanent error otherwise).
func (s *Service) Run(ctx context.Context, args tasks.MediaExportArgs, t *job.Task) error {
	j, err := s.start(ctx, args, t)
	if errors.Is(err, errSkip) {
		s.setResult(ctx, t, s.present(ctx, j))
		return nil
	}
	if err != nil {
		return err
	}
	log := s.log.With("export_id", j.ID, "artist_did", j.OwnerDID)
	log.InfoContext(ctx, "export started", "attempt", attempt(t))

	runCtx, cancelRun := context.WithCancelCause(ctx)
	defer cancelRun(nil)
	rep := newReporter(s, j, t, cancelRun)
	rep.start(runCtx)
	res, err := s.build(runCtx, j, rep)
	rep.stop()
	return s.finish(ctx, runCtx, j, t, rep.snapshot(), res, err)
}

// start loads (or, for a task enqueued without Request, creates) the job
// row, checks that it may run and marks it running.
func (s *Service) start(ctx context.Context, args tasks.MediaExportArgs, t *job.Task) (store.Job, error) {
	taskID := ""
	if t != nil {
		taskID = t.ID
	}
	j, err := s.o.Store.GetJob(ctx, args.ExportID)
	if errors.Is(err, store.ErrNotFound) {
		// Enqueued straight through the generic task API: adopt it, unless
		// the artist already has another export active.
		var created bool
		j, created, err = s.o.Store.CreateJobOnce(ctx, store.Job{
			ID: args.ExportID, Type: Kind, OwnerDID: args.ArtistDID, TaskID: taskID, Status: store.JobPending,
		})
		if err == nil && !created {
			return store.Job{}, job.Permanent(fmt.Errorf("export %s: artist %s already has export %s %s", args.ExportID, args.ArtistDID, j.ID, j.Status))
		}
	}
	if err != nil {
		return store.Job{}, fmt.Errorf("export %s: load job: %w", args.ExportID, err)
	}
	if j.Type != Kind || j.OwnerDID != args.ArtistDID {
		return store.Job{}, job.Permanent(fmt.Errorf("export %s: job row is a %s for %s, not an export for %s", j.ID, j.Type, j.OwnerDID, args.ArtistDID))
	}
	switch j.Status {
	case store.JobDone:
		return j, errSkip
	case store.JobCancelled:
		return j, job.Permanent(fmt.Errorf("export %s: %w", j.ID, ErrCancelled))
	case store.JobFailed:
		return j, job.Permanent(fmt.Errorf("export %s already failed: %s", j.ID, j.Error))
	}
	running, empty, phase, msg, zero := store.JobRunning, "", string(PhaseListing), "starting", 0.0
	u := store.JobUpdate{Status: &running, Error: &empty, Phase: &phase, Message: &msg, Progress: &zero,
		Result: jobData{Progress: Progress{Phase: PhaseListing, Message: msg}}.encode()}
	if taskID != "" {
		u.TaskID = &taskID
	}
	if j, err = s.o.Store.UpdateJob(ctx, j.ID, u); err != nil {
		return store.Job{}, fmt.Errorf("export %s: mark running: %w", args.ExportID, err)
	}
	return j, nil
}

// finish records how the attempt ended and returns the handler's error.
func (s *Service) finish(ctx, runCtx context.Context, j store.Job, t *job.Task, p Progress, res *Result, runErr error) error {
	bctx, cancel := detached(ctx)
	defer cancel()
	log := s.log.With("export_id", j.ID, "artist_did", j.OwnerDID)

	if runErr == nil {
		p.Phase = PhaseDone
		p.BytesDone, p.TracksDone = p.BytesTotal, p.TracksTotal
		p.Percent = 100
		p.Message = fmt.Sprintf("%d of %d tracks, %s", res.Tracks, res.TracksTotal, formatBytes(res.Size))
		if n := len(res.Missing); n > 0 {
			p.Message += fmt.Sprintf(" (%d missing, listed in %s)", n, ManifestName)
		}
		done, phase := store.JobDone, string(p.Phase)
		row, err := s.o.Store.UpdateJob(bctx, j.ID, store.JobUpdate{
			Status: &done, Progress: &p.Percent, Phase: &phase, Message: &p.Message,
			Result: jobData{Progress: p, Result: res}.encode(),
		})
		if err != nil {
			// The zip exists, but nobody can learn where: retry (the rerun
			// rebuilds the same zip).
			return fmt.Errorf("export %s: record result: %w", j.ID, err)
		}
		s.setResult(bctx, t, StateOf(row))
		log.InfoContext(ctx, "export done", "tracks", res.Tracks, "missing", len(res.Missing), "bytes", res.Size)
		return nil
	}

	// Was it cancelled? The progress loop saw the row, an operator
	// cancelled the task itself (the dashboard, `plyrtasks tasks cancel`:
	// the worker gives the context job.ErrCancelled as its cause), or the
	// row says so now (asynq's cancel can beat the loop to it).
	cancelled := errors.Is(context.Cause(runCtx), ErrCancelled) || errors.Is(context.Cause(ctx), job.ErrCancelled)
	if !cancelled && runCtx.Err() != nil {
		if row, err := s.o.Store.GetJob(bctx, j.ID); err == nil && row.Status == store.JobCancelled {
			cancelled = true
		}
	}
	update := func(st store.JobStatus, msg, errText string) store.Job {
		phase := string(p.Phase)
		u := store.JobUpdate{Status: &st, Message: &msg, Phase: &phase, Result: jobData{Progress: p}.encode()}
		if errText != "" {
			u.Error = &errText
		}
		row, err := s.o.Store.UpdateJob(bctx, j.ID, u)
		if err != nil {
			log.ErrorContext(ctx, "could not record export outcome", "status", st, "err", err)
			return store.Job{}
		}
		s.setResult(bctx, t, StateOf(row))
		return row
	}

	switch {
	case cancelled:
		p.Message = "cancelled; the partial upload was discarded"
		update(store.JobCancelled, p.Message, "cancelled")
		log.InfoContext(ctx, "export cancelled")
		return job.Permanent(fmt.Errorf("export %s: %w", j.ID, ErrCancelled))
	case errors.Is(ctx.Err(), context.Canceled):
		p.Message = "interrupted (worker stopping); starts over when the task runs again"
		update(store.JobPending, p.Message, "")
		log.InfoContext(ctx, "export interrupted; upload aborted")
		return fmt.Errorf("export %s interrupted: %w", j.ID, ctx.Err())
	case job.IsPermanent(runErr) || t == nil || t.LastAttempt():
		p.Message = "failed: " + runErr.Error()
		update(store.JobFailed, p.Message, runErr.Error())
		log.ErrorContext(ctx, "export failed", "err", runErr)
		return job.Permanent(fmt.Errorf("export %s: %w", j.ID, runErr))
	default:
		p.Message = fmt.Sprintf("attempt %d failed, will retry: %v", attempt(t), runErr)
		update(store.JobPending, p.Message, runErr.Error())
		log.WarnContext(ctx, "export attempt failed; retrying", "attempt", attempt(t), "err", runErr)
		return fmt.Errorf("export %s: %w", j.ID, runErr)
	}
}

// setResult writes the task result (a no-op without a task or result
// writer); failures are logged, never fatal.
func (s *Service) setResult(ctx context.Context, t *job.Task, st State) {
	if t == nil {
		return
	}
	if err := t.SetResult(st); err != nil {
		s.log.DebugContext(ctx, "could not write export task result", "export_id", st.ExportID, "err", err)
	}
}

// attempt is the 1-based attempt number.
func attempt(t *job.Task) int {
	if t == nil {
		return 1
	}
	return t.Attempt + 1
}
