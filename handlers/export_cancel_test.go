package handlers

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/plyr-fm/plyrtasks/control"
	"github.com/plyr-fm/plyrtasks/export"
	"github.com/plyr-fm/plyrtasks/storage"
	"github.com/plyr-fm/plyrtasks/store"
	"github.com/plyr-fm/plyrtasks/tasks"
)

// Every way an operator can cancel a running export stops it on a real
// worker: the job row ends cancelled (not failed, and not pending to start
// over as after a shutdown), the task ends archived, and the multipart
// upload is aborted. The dashboard's cancel button, like the API's DELETE
// /v1/tasks/{id} without the task controls mounted, is asynq's
// CancelProcessing alone: the handler only sees its context end.
func TestMediaExportCancelledByAnyRouteEndsCancelled(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	tests := []struct {
		name   string
		cancel func(ctx context.Context, w *exportWorld, j store.Job) error
	}{
		{"asynq CancelProcessing (dashboard, API DELETE /v1/tasks/{id})", func(_ context.Context, w *exportWorld, j store.Job) error {
			return w.insp.CancelProcessing(j.TaskID)
		}},
		{"control.Controller.Cancel (plyrtasks cancel)", func(ctx context.Context, w *exportWorld, j store.Job) error {
			c := control.New(w.rc, control.Options{Namespace: "export-e2e", Logger: quiet})
			r, err := c.Cancel(ctx, j.TaskID)
			if err == nil && r.State != "archived" {
				t.Errorf("Controller.Cancel = %+v, want the running task archived", r)
			}
			return err
		}},
		{"export.Service.Cancel (DELETE /v1/exports/{id})", func(ctx context.Context, w *exportWorld, j store.Job) error {
			_, err := w.svc.Cancel(ctx, j.ID)
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newExportWorld(t, 10*time.Millisecond)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			j, _, err := w.svc.Request(ctx, exportArtist)
			if err != nil {
				t.Fatal(err)
			}
			w.awaitJob(ctx, t, j.ID, func(r store.Job) bool {
				return r.Phase == string(export.PhaseArchiving) && r.Progress > 0
			})
			if err := tt.cancel(ctx, w, j); err != nil {
				t.Fatal(err)
			}
			// Promptly: the row says cancelled within a few progress
			// intervals of the cancel.
			stopCtx, stopCancel := context.WithTimeout(ctx, 5*time.Second)
			defer stopCancel()
			w.awaitJob(stopCtx, t, j.ID, func(r store.Job) bool { return r.Status == store.JobCancelled })

			info := w.awaitTask(t, j.TaskID, asynq.TaskStateArchived, asynq.TaskStateCompleted)
			if info.State != asynq.TaskStateArchived || !strings.Contains(info.LastErr, "cancel") {
				t.Fatalf("task %s (%q), want archived as cancelled", info.State, info.LastErr)
			}
			// After the task is done with (asynq retried the run it
			// cancelled, and that run refused to start), the row is still
			// cancelled and no upload is left behind.
			row, err := w.st.GetJob(ctx, j.ID)
			if err != nil || row.Status != store.JobCancelled {
				t.Fatalf("job row %s (%q), %v; want cancelled", row.Status, row.Message, err)
			}
			w.awaitNoExportFiles(ctx, t)
		})
	}
}

// awaitJob waits until the export's row satisfies ok, or ctx ends.
func (w *exportWorld) awaitJob(ctx context.Context, t *testing.T, id string, ok func(store.Job) bool) {
	t.Helper()
	for {
		row, err := w.st.GetJob(ctx, id)
		if err == nil && ok(row) {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("job %s never reached the state: last %s, phase %s, %q (%v)", id, row.Status, row.Phase, row.Message, err)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// awaitNoExportFiles waits until nothing (no zip, no upload's temporary
// file) is left under exports/.
func (w *exportWorld) awaitNoExportFiles(ctx context.Context, t *testing.T) {
	t.Helper()
	root := w.obj.(*storage.File).Root()
	for {
		var left []string
		_ = filepath.WalkDir(filepath.Join(root, "exports"), func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				left = append(left, d.Name())
			}
			return nil
		})
		if len(left) == 0 {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("files left under exports/ after cancel: %v", left)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// A queued export cancelled through the generic task cancel (`plyrtasks
// cancel`, DELETE /v1/tasks/{id}) has its task deleted, so no handler ever
// runs for it: the export reads as cancelled once its task is seen gone,
// and the artist's next request starts a new export instead of returning
// the dead one.
func TestMediaExportCancelledWhileQueuedEndsCancelled(t *testing.T) {
	w := newExportWorld(t, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bulk := tasks.Namespaced("export-e2e", tasks.QueueBulk)
	if err := w.insp.PauseQueue(bulk); err != nil { // keep the task queued
		t.Fatal(err)
	}
	j, _, err := w.svc.Request(ctx, exportArtist)
	if err != nil {
		t.Fatal(err)
	}
	c := control.New(w.rc, control.Options{Namespace: "export-e2e", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if r, err := c.Cancel(ctx, j.TaskID); err != nil || r.State != "deleted" {
		t.Fatalf("Controller.Cancel = %+v, %v; want the queued task deleted", r, err)
	}
	for { // within the grace in which a pending row's task may be in flight
		st, err := w.svc.Get(ctx, j.ID)
		if err != nil {
			t.Fatal(err)
		}
		if st.Status == store.JobCancelled {
			break
		}
		if st.Status != store.JobPending {
			t.Fatalf("export %s (%q), want pending until cancelled", st.Status, st.Message)
		}
		select {
		case <-ctx.Done():
			t.Fatal("the export of a deleted task never read as cancelled")
		case <-time.After(100 * time.Millisecond):
		}
	}
	if err := w.insp.UnpauseQueue(bulk); err != nil {
		t.Fatal(err)
	}
	next, created, err := w.svc.Request(ctx, exportArtist)
	if err != nil || !created || next.ID == j.ID {
		t.Fatalf("next Request = %s created=%v %v; want a new export", next.ID, created, err)
	}
	info := w.awaitTask(t, next.TaskID, asynq.TaskStateCompleted, asynq.TaskStateArchived)
	if info.State != asynq.TaskStateCompleted {
		t.Fatalf("new export's task %s (%q)", info.State, info.LastErr)
	}
}
