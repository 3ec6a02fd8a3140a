package export_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/plyr-fm/plyrtasks/export"
	"github.com/plyr-fm/plyrtasks/store"
	"github.com/plyr-fm/plyrtasks/store/storetest"
)

// agedStore shows every job row as last written an hour ago, past the
// grace in which a pending row's task may still be on its way.
type agedStore struct{ store.Store }

func age(j store.Job) store.Job { j.UpdatedAt = j.UpdatedAt.Add(-time.Hour); return j }

func (s agedStore) GetJob(ctx context.Context, id string) (store.Job, error) {
	j, err := s.Store.GetJob(ctx, id)
	return age(j), err
}

func (s agedStore) CreateJobOnce(ctx context.Context, j store.Job) (store.Job, bool, error) {
	got, created, err := s.Store.CreateJobOnce(ctx, j)
	if !created {
		got = age(got)
	}
	return got, created, err
}

func (s agedStore) ListJobs(ctx context.Context, jobType, owner string, limit int) ([]store.Job, error) {
	jobs, err := s.Store.ListJobs(ctx, jobType, owner, limit)
	for i := range jobs {
		jobs[i] = age(jobs[i])
	}
	return jobs, err
}

// A queued export whose task was deleted before it ran (a generic cancel
// of a pending task deletes it, and no handler runs) is cancelled when it
// is next read or requested, so the artist can export again; while the
// task exists, or when that cannot be told, it stays pending.
func TestPendingExportWhoseTaskIsGoneIsCancelled(t *testing.T) {
	tests := []struct {
		name string
		// exists answers Options.TaskExists; nil leaves it unset.
		exists func(ctx context.Context, taskID string) (bool, error)
		aged   bool // the row was last written past the grace
		want   store.JobStatus
	}{
		{"task deleted", func(context.Context, string) (bool, error) { return false, nil }, true, store.JobCancelled},
		{"task still queued", func(context.Context, string) (bool, error) { return true, nil }, true, store.JobPending},
		{"queue unreachable", func(context.Context, string) (bool, error) { return false, errors.New("redis: connection refused") }, true, store.JobPending},
		{"row written just now", func(context.Context, string) (bool, error) { return false, nil }, false, store.JobPending},
		{"no TaskExists", nil, true, store.JobPending},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			b := fileBackend(t)
			raw := storetest.SQLite(t)
			seed(t, raw, b.storage)
			var st store.Store = raw
			if tt.aged {
				st = agedStore{raw}
			}
			enq := &recordingEnqueuer{}
			svc, err := export.New(export.Options{Store: st, Storage: b.storage, Enqueuer: enq, TaskExists: tt.exists})
			if err != nil {
				t.Fatal(err)
			}
			first, created, err := svc.Request(ctx, artistDID)
			if err != nil || !created || first.TaskID == "" {
				t.Fatalf("Request = %+v, created=%v, %v", first, created, err)
			}

			got, err := svc.Get(ctx, first.ID)
			if err != nil || got.Status != tt.want {
				t.Fatalf("Get = %s (%q), %v; want %s", got.Status, got.Message, err, tt.want)
			}
			if tt.want == store.JobCancelled {
				// The newcomer run: the progress still said "waiting for
				// a worker" next to status cancelled.
				if p := got.Progress; !strings.Contains(p.Message, "cancelled") {
					t.Errorf("progress message = %q, want it to say cancelled", p.Message)
				}
			}
			list, err := svc.List(ctx, artistDID, 10)
			if err != nil || len(list) != 1 || list[0].Status != tt.want {
				t.Fatalf("List = %+v, %v; want one export, %s", list, err, tt.want)
			}
			again, created, err := svc.Request(ctx, artistDID)
			if err != nil {
				t.Fatal(err)
			}
			if tt.want == store.JobCancelled {
				if !created || again.ID == first.ID || len(enq.calls()) != 2 {
					t.Fatalf("second Request = %s created=%v after %d enqueues; want a new export", again.ID, created, len(enq.calls()))
				}
			} else if created || again.ID != first.ID {
				t.Fatalf("second Request = %s created=%v; want the pending export %s", again.ID, created, first.ID)
			}
			if row, _ := raw.GetJob(ctx, first.ID); row.Status != tt.want {
				t.Fatalf("first export's row is %s, want %s", row.Status, tt.want)
			}
		})
	}
}
