// Package export builds media exports: one zip of every track an artist
// published (the lossless original where there is one), streamed from
// object storage into a zip that is uploaded while it is produced, with live
// progress.
//
// A Service is shared by the producer side and the worker side:
//
//   - Request records a job row and enqueues the export:media task (one
//     active export per artist; a failed enqueue marks the job failed).
//   - Run is the task's handler body (handlers/export.go calls it): it
//     streams every track into a zip (archive/zip, stored without
//     recompression) written straight into a storage.Upload, so memory stays
//     flat and nothing touches local disk; progress goes to the job row and
//     the task result at most four times a second.
//   - Cancel marks the job cancelled and asks the worker to stop; the
//     running export aborts its upload within a progress interval.
//   - HTTPHandler serves GET /v1/exports/{id}, its Server-Sent Events stream,
//     POST /v1/exports and DELETE /v1/exports/{id}.
//
// The job row is the source of truth for an export's state, across
// processes and task retries.
package export

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/hibiken/asynq"

	"github.com/plyr-fm/plyrtasks/job"
	"github.com/plyr-fm/plyrtasks/storage"
	"github.com/plyr-fm/plyrtasks/store"
	"github.com/plyr-fm/plyrtasks/tasks"
)

// Kind is the task kind (and job type) of media exports.
var Kind = tasks.MediaExportArgs{}.Kind()

// Errors callers can test for with errors.Is.
var (
	// ErrNotFound: no export (or no artist) with that ID.
	ErrNotFound = store.ErrNotFound
	// ErrNotActive: Cancel of an export that already finished.
	ErrNotActive = errors.New("export is not queued or running")
	// ErrCancelled is why a cancelled export stopped.
	// It wraps job.ErrCancelled: the run's outcome is cancelled, not a
	// failure.
	ErrCancelled = fmt.Errorf("export cancelled: %w", job.ErrCancelled)
	// ErrEnqueue wraps a failed enqueue; the job is marked failed.
	ErrEnqueue = errors.New("enqueue export task")
	// ErrIDTaken: a request's export ID already names another artist's
	// export, another kind of job, or an export that failed or was
	// cancelled.
	ErrIDTaken = errors.New("export ID already in use")
)

// Enqueuer puts an export:media task on the queue and returns its task ID.
//
// The job row already guarantees one active export per artist, so the
// adapter should enqueue with the task ID set to args.ExportID (Cancel can
// then always find the task) and without asynq uniqueness (a unique lock
// left by an archived task would otherwise refuse the artist's next export
// for hours).
type Enqueuer interface {
	EnqueueExport(ctx context.Context, args tasks.MediaExportArgs) (taskID string, err error)
}

// EnqueueFunc adapts a function to Enqueuer.
type EnqueueFunc func(ctx context.Context, args tasks.MediaExportArgs) (string, error)

// EnqueueExport calls f.
func (f EnqueueFunc) EnqueueExport(ctx context.Context, args tasks.MediaExportArgs) (string, error) {
	return f(ctx, args)
}

// Options configure a Service. Store and Storage are required.
type Options struct {
	Store   store.Store
	Storage storage.Storage
	// Enqueuer is needed by Request only (a worker-only Service may leave
	// it nil).
	Enqueuer Enqueuer
	// CancelTask asks the worker running taskID to stop (asynq's
	// Inspector.CancelProcessing). Optional: without it a cancelled export
	// still stops, when its progress loop next reads the job row.
	CancelTask func(ctx context.Context, taskID string) error
	// TaskExists reports whether task taskID is still known to the queue,
	// in any state (finished tasks count while they are retained).
	// Optional. With it, an export still pending whose task is gone — a
	// queued export deleted through DELETE /v1/tasks/{id}, `plyrtasks
	// cancel` or the dashboard, which never runs its handler — is marked
	// cancelled the next time it is read or requested, instead of staying
	// pending for ever and holding the artist's one active export.
	TaskExists func(ctx context.Context, taskID string) (bool, error)
	// URLExpiry is how long presigned download URLs stay valid. Default 24h
	// (EXPORT_URL_EXPIRY).
	URLExpiry time.Duration
	// KeyPrefix is where exports are stored. Default "exports/"; each
	// export is KeyPrefix + id + "/plyr-export-{handle}.zip".
	KeyPrefix string
	// ProgressInterval is the shortest time between two progress writes
	// (job row and task result), and how often a running export checks its
	// row for a cancellation. Default 250ms (at most 4 writes a second).
	ProgressInterval time.Duration
	// OrphanAfter: a pending job that never got a task ID this long after
	// it was created lost its enqueue (the requesting process died between
	// the row and the enqueue); the next Request marks it failed and starts
	// a new export. Default 2m.
	OrphanAfter time.Duration
	// ReadAttempts is how many times reading one track is tried, resuming
	// at the byte where it broke. Default 3.
	ReadAttempts int
	// ListConcurrency is how many objects are looked up at once while
	// listing. Default 8.
	ListConcurrency int
	// Logger default: discard.
	Logger *slog.Logger
}

// Service requests, runs, cancels and reports media exports.
type Service struct {
	o   Options
	log *slog.Logger
}

// New returns a Service.
func New(o Options) (*Service, error) {
	if o.Store == nil {
		return nil, errors.New("export: Options.Store is required")
	}
	if o.Storage == nil {
		return nil, errors.New("export: Options.Storage is required")
	}
	if o.URLExpiry <= 0 {
		o.URLExpiry = storage.DefaultURLExpiry
	}
	if o.KeyPrefix == "" {
		o.KeyPrefix = "exports/"
	}
	if !strings.HasSuffix(o.KeyPrefix, "/") {
		o.KeyPrefix += "/"
	}
	if o.ProgressInterval <= 0 {
		o.ProgressInterval = 250 * time.Millisecond
	}
	if o.OrphanAfter <= 0 {
		o.OrphanAfter = 2 * time.Minute
	}
	if o.ReadAttempts <= 0 {
		o.ReadAttempts = 3
	}
	if o.ListConcurrency <= 0 {
		o.ListConcurrency = 8
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Service{o: o, log: log.With("component", "export")}, nil
}

// Request starts an export of the artist's tracks: it records a pending job
// and enqueues the task. While the artist has an export queued or running,
// it returns that job with created=false instead. When the enqueue fails,
// the new job is marked failed with the reason and the error wraps
// ErrEnqueue.
func (s *Service) Request(ctx context.Context, artistDID string) (job store.Job, created bool, err error) {
	return s.RequestID(ctx, newID(), artistDID)
}

// RequestID is Request with the caller's export ID (the HTTP API's generic
// POST /v1/tasks/export:media keeps the payload's export_id).
func (s *Service) RequestID(ctx context.Context, id, artistDID string) (job store.Job, created bool, err error) {
	if s.o.Enqueuer == nil {
		return store.Job{}, false, errors.New("export: Request needs Options.Enqueuer")
	}
	args := tasks.MediaExportArgs{ExportID: id, ArtistDID: artistDID}
	if err := args.Validate(); err != nil {
		return store.Job{}, false, err
	}
	// An export ID names one export for good: asking again with it (a
	// client retrying its request) returns that export while it is queued,
	// running or done. Under another artist, another kind of job, or an
	// export that failed or was cancelled, the ID is taken: ask with a new
	// one.
	if j, err := s.o.Store.GetJob(ctx, id); err == nil {
		if j.Type == Kind && j.OwnerDID == artistDID {
			if j = s.reconcile(ctx, j); j.Status.Active() || j.Status == store.JobDone {
				return j, false, nil
			}
		}
		return store.Job{}, false, fmt.Errorf("export %s (%s): %w", id, j.Status, ErrIDTaken)
	} else if !errors.Is(err, store.ErrNotFound) {
		return store.Job{}, false, fmt.Errorf("export %s: %w", id, err)
	}
	if _, err := s.o.Store.GetArtist(ctx, artistDID); err != nil {
		return store.Job{}, false, fmt.Errorf("export: artist %s: %w", artistDID, err)
	}
	queued := Progress{Phase: PhaseQueued, Message: "waiting for a worker"}
	for range 2 { // a second pass after clearing an orphan
		j, created, err := s.o.Store.CreateJobOnce(ctx, store.Job{
			ID: id, Type: Kind, OwnerDID: artistDID, Status: store.JobPending,
			Phase: string(queued.Phase), Message: queued.Message,
			Result: jobData{Progress: queued}.encode(),
		})
		if err != nil {
			return store.Job{}, false, fmt.Errorf("export: request for %s: %w", artistDID, err)
		}
		if !created {
			j = s.reconcile(ctx, j)
			if !j.Status.Active() {
				continue // its task was deleted: a new export may start
			}
			if s.orphaned(j) {
				s.log.WarnContext(ctx, "export job was never enqueued; marking it failed", "export_id", j.ID)
				s.setFailed(ctx, j.ID, "never enqueued: the requesting process stopped before enqueueing the task")
				continue
			}
			return j, false, nil
		}
		taskID, err := s.o.Enqueuer.EnqueueExport(ctx, args)
		if err != nil {
			msg := "enqueue failed: " + err.Error()
			failed := s.setFailed(ctx, id, msg)
			if failed.ID == "" {
				failed = j
			}
			return failed, true, fmt.Errorf("export %s: %w: %w", id, ErrEnqueue, err)
		}
		j, err = s.o.Store.UpdateJob(ctx, id, store.JobUpdate{TaskID: &taskID})
		if err != nil {
			// The task is queued; its handler records the task ID itself.
			s.log.WarnContext(ctx, "could not record the export's task ID", "export_id", id, "err", err)
			j.TaskID = taskID
		}
		return j, true, nil
	}
	return store.Job{}, false, fmt.Errorf("export: request for %s: an orphaned job kept reappearing", artistDID)
}

// taskGoneGrace: a pending row this recently written may be one whose task
// is being enqueued or started right now; reconcile leaves it alone.
const taskGoneGrace = 5 * time.Second

// reconcile marks a pending export whose task no longer exists cancelled
// (see Options.TaskExists) and returns the row as it is now. Any doubt —
// no TaskExists, an error asking, a row written within taskGoneGrace —
// leaves the row as it was.
func (s *Service) reconcile(ctx context.Context, j store.Job) store.Job {
	if s.o.TaskExists == nil || j.Status != store.JobPending || j.TaskID == "" || time.Since(j.UpdatedAt) < taskGoneGrace {
		return j
	}
	exists, err := s.o.TaskExists(ctx, j.TaskID)
	if err != nil || exists {
		if err != nil {
			s.log.DebugContext(ctx, "could not check the export's task", "export_id", j.ID, "task_id", j.TaskID, "err", err)
		}
		return j
	}
	st := store.JobCancelled
	msg := "cancelled: its task was deleted from the queue before it ran"
	reason := "cancelled"
	// The progress shown (GET /v1/exports/{id}) says so too, not "waiting
	// for a worker".
	data := jobData{Progress: Progress{Phase: PhaseQueued, Message: msg}}.encode()
	row, err := s.o.Store.UpdateJob(ctx, j.ID, store.JobUpdate{Status: &st, Message: &msg, Error: &reason, Result: data})
	if err != nil {
		s.log.WarnContext(ctx, "could not mark an export with no task cancelled", "export_id", j.ID, "err", err)
		return j
	}
	s.log.InfoContext(ctx, "export's task was deleted before it ran; export cancelled", "export_id", j.ID, "task_id", j.TaskID)
	return row
}

// InspectorTaskExists is Options.TaskExists for export tasks in queue (the
// namespaced bulk queue, "plyr:bulk") of asynq's inspector. A queue that
// does not exist holds no task.
func InspectorTaskExists(insp *asynq.Inspector, queue string) func(ctx context.Context, taskID string) (bool, error) {
	return func(_ context.Context, taskID string) (bool, error) {
		_, err := insp.GetTaskInfo(queue, taskID)
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, asynq.ErrTaskNotFound), errors.Is(err, asynq.ErrQueueNotFound):
			return false, nil
		}
		return false, fmt.Errorf("export: look up task %s: %w", taskID, err)
	}
}

// orphaned: pending, never got a task ID, and old enough that its enqueue
// is not merely in flight.
func (s *Service) orphaned(j store.Job) bool {
	return j.Status == store.JobPending && j.TaskID == "" && time.Since(j.CreatedAt) > s.o.OrphanAfter
}

// setFailed marks a job failed, even when ctx is cancelled. It returns the
// updated row, or the zero Job when the update failed (logged).
func (s *Service) setFailed(ctx context.Context, id, reason string) store.Job {
	ctx, cancel := detached(ctx)
	defer cancel()
	st := store.JobFailed
	j, err := s.o.Store.UpdateJob(ctx, id, store.JobUpdate{Status: &st, Error: &reason, Message: &reason})
	if err != nil {
		s.log.ErrorContext(ctx, "could not mark export failed", "export_id", id, "err", err)
		return store.Job{}
	}
	return j
}

// Get returns an export's state. A finished export's download URL is
// presigned afresh, so a link read later still works for URLExpiry.
func (s *Service) Get(ctx context.Context, id string) (State, error) {
	j, err := s.o.Store.GetJob(ctx, id)
	if err != nil {
		return State{}, fmt.Errorf("export %s: %w", id, err)
	}
	if j.Type != Kind {
		return State{}, fmt.Errorf("export %s: %w", id, ErrNotFound)
	}
	return s.present(ctx, s.reconcile(ctx, j)), nil
}

// List returns an artist's exports, newest first.
func (s *Service) List(ctx context.Context, artistDID string, limit int) ([]State, error) {
	jobs, err := s.o.Store.ListJobs(ctx, Kind, artistDID, limit)
	if err != nil {
		return nil, fmt.Errorf("export: list for %s: %w", artistDID, err)
	}
	out := make([]State, 0, len(jobs))
	for _, j := range jobs {
		out = append(out, s.present(ctx, s.reconcile(ctx, j)))
	}
	return out, nil
}

// present turns a row into its state with a fresh download URL.
func (s *Service) present(ctx context.Context, j store.Job) State {
	st := StateOf(j)
	if st.Result != nil && j.Status == store.JobDone {
		if url, exp, err := s.downloadURL(ctx, st.Result.Key); err == nil {
			st.Result.DownloadURL, st.Result.URLExpiresAt = url, exp
		} else {
			s.log.WarnContext(ctx, "could not presign export download", "export_id", j.ID, "err", err)
		}
	}
	return st
}

func (s *Service) downloadURL(ctx context.Context, key string) (string, *time.Time, error) {
	name := key[strings.LastIndex(key, "/")+1:]
	url, err := s.o.Storage.DownloadURL(ctx, key, storage.URLOptions{Expiry: s.o.URLExpiry, Filename: name})
	if err != nil {
		return "", nil, err
	}
	if !strings.Contains(url, "://") { // a local file path does not expire
		return url, nil, nil
	}
	exp := time.Now().Add(s.o.URLExpiry).UTC().Truncate(time.Second)
	return url, &exp, nil
}

// Cancel stops an export: the job is marked cancelled at once and, when
// the task is running, CancelTask asks its worker to stop (the export also
// notices the row within ProgressInterval). A queued task is skipped when
// it runs. Cancelling a finished export returns ErrNotActive.
func (s *Service) Cancel(ctx context.Context, id string) (store.Job, error) {
	j, err := s.o.Store.GetJob(ctx, id)
	if err != nil {
		return store.Job{}, fmt.Errorf("export %s: %w", id, err)
	}
	if j.Type != Kind {
		return store.Job{}, fmt.Errorf("export %s: %w", id, ErrNotFound)
	}
	if !j.Status.Active() {
		return j, fmt.Errorf("export %s is %s: %w", id, j.Status, ErrNotActive)
	}
	st, msg := store.JobCancelled, "cancelled"
	j, err = s.o.Store.UpdateJob(ctx, id, store.JobUpdate{Status: &st, Message: &msg, Error: &msg})
	if err != nil {
		return store.Job{}, fmt.Errorf("export %s: cancel: %w", id, err)
	}
	if j.TaskID != "" && s.o.CancelTask != nil {
		if err := s.o.CancelTask(ctx, j.TaskID); err != nil {
			// Not fatal: the running export polls its row.
			s.log.WarnContext(ctx, "could not signal the export's worker", "export_id", id, "task_id", j.TaskID, "err", err)
		}
	}
	return j, nil
}

// ExportID returns the export an export:media task payload belongs to, so
// a generic cancel path (DELETE /v1/tasks/{id}, `plyrtasks cancel`) can
// call Cancel: cancelling only the task would look like a worker shutdown
// to the export, which then starts over instead of stopping.
func ExportID(payload []byte) (string, error) {
	a, err := tasks.All().Decode(Kind, payload)
	if err != nil {
		return "", fmt.Errorf("export: task payload: %w", err)
	}
	return a.(*tasks.MediaExportArgs).ExportID, nil
}

// newID returns a random export ID (26 base32 characters).
func newID() string { return rand.Text() }

// detached returns a context for bookkeeping that must happen even after
// ctx was cancelled (recording a failure or a cancellation).
func detached(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
}
