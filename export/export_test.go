package export_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plyr-fm/plyrtasks/export"
	"github.com/plyr-fm/plyrtasks/job"
	"github.com/plyr-fm/plyrtasks/storage"
	"github.com/plyr-fm/plyrtasks/store"
	"github.com/plyr-fm/plyrtasks/store/storetest"
	"github.com/plyr-fm/plyrtasks/tasks"
)

func TestExportBuildsZip(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, b, envOptions{})
			f := seed(t, e.store, b.storage)
			j, args := e.request(t)
			if args.ExportID != j.ID || args.ArtistDID != artistDID || j.TaskID != "task-"+j.ID || j.Status != store.JobPending {
				t.Fatalf("Request: job %+v enqueued %+v", j, args)
			}

			res := &results{}
			if err := e.svc.Run(ctx, args, task(j.TaskID, 0, 3, res)); err != nil {
				t.Fatalf("Run: %v", err)
			}

			row := e.job(t, j.ID)
			st := export.StateOf(row)
			if row.Status != store.JobDone || row.Progress != 100 || row.Phase != "done" || row.CompletedAt.IsZero() {
				t.Fatalf("job row after Run: status %s progress %v phase %q", row.Status, row.Progress, row.Phase)
			}
			r := st.Result
			if r == nil {
				t.Fatal("job row has no result")
			}
			wantKey := "exports/" + j.ID + "/plyr-export-alice.test.zip"
			if r.Key != wantKey || r.Tracks != len(f.entries) || r.TracksTotal != len(f.tracks) {
				t.Fatalf("result key %q tracks %d/%d; want %q %d/%d", r.Key, r.Tracks, r.TracksTotal, wantKey, len(f.entries), len(f.tracks))
			}
			if len(r.Missing) != 1 || r.Missing[0].TrackID != f.missing[0] || r.Missing[0].Title != "Gone" ||
				r.Missing[0].Reason != "audio file not found in storage" {
				t.Fatalf("result missing = %+v, want track %d Gone: audio file not found in storage", r.Missing, f.missing[0])
			}
			if len(r.Substituted) != 1 || r.Substituted[0].TrackID != f.substit[0] ||
				r.Substituted[0].Reason != "original not found in storage; the served wav file is included instead" {
				t.Fatalf("result substituted = %+v", r.Substituted)
			}
			if st.BytesDone != f.bytes || st.BytesTotal != f.bytes || st.TracksDone != len(f.tracks) {
				t.Fatalf("progress bytes %d/%d tracks %d; want %d/%d and %d", st.BytesDone, st.BytesTotal, st.TracksDone, f.bytes, f.bytes, len(f.tracks))
			}

			data := b.fetch(t, r.Key)
			if int64(len(data)) != r.Size {
				t.Fatalf("object is %d bytes, result says %d", len(data), r.Size)
			}
			checkZip(t, data, f)

			switch b.name {
			case "file":
				if got, err := os.ReadFile(r.DownloadURL); err != nil || string(got) != string(data) {
					t.Fatalf("download path %q: %v", r.DownloadURL, err)
				}
			case "s3":
				if !strings.Contains(r.DownloadURL, "X-Amz-Expires=3600") || r.URLExpiresAt == nil {
					t.Fatalf("download URL %q expires %v; want a 1h presigned URL", r.DownloadURL, r.URLExpiresAt)
				}
				if got := httpGet(t, r.DownloadURL); string(got) != string(data) {
					t.Fatal("presigned URL served different bytes")
				}
			}

			// The task result ends with the same state.
			states := res.states(t)
			last := states[len(states)-1]
			if last.Status != store.JobDone || last.Percent != 100 || last.Result == nil || last.Result.Key != r.Key {
				t.Fatalf("last task result = %+v", last)
			}
			if n := b.pending(t, "exports/"); n != 0 {
				t.Fatalf("%d unfinished uploads left", n)
			}
		})
	}
}

// Progress goes out throttled (at most one write per interval), with
// phases in order and percent never going back.
func TestProgressIsThrottledAndMonotonic(t *testing.T) {
	b := fileBackend(t)
	slow := &faulty{Storage: b.storage, Delay: 2 * time.Millisecond, ReadSize: 64 << 10}
	const interval = 50 * time.Millisecond
	e := newEnv(t, b, envOptions{storage: slow, interval: interval})
	f := seed(t, e.store, b.storage)
	j, args := e.request(t)
	res := &results{}
	start := time.Now()
	if err := e.svc.Run(context.Background(), args, task(j.TaskID, 0, 3, res)); err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	states := res.states(t)
	// All but the final write come from the throttled loop.
	if max := int(elapsed/interval) + 2; len(states) > max {
		t.Fatalf("%d progress writes in %s: more than one per %s (max %d)", len(states), elapsed, interval, max)
	}
	if len(states) < 5 {
		t.Fatalf("only %d progress writes in %s: not reporting while archiving", len(states), elapsed)
	}
	order := map[export.Phase]int{export.PhaseListing: 1, export.PhaseArchiving: 2, export.PhaseUploading: 3, export.PhaseDone: 4}
	seen := map[export.Phase]bool{}
	prev := export.State{}
	for i, s := range states {
		if order[s.Phase] == 0 {
			t.Fatalf("write %d: unknown phase %q", i, s.Phase)
		}
		if s.Percent < prev.Percent || order[s.Phase] < order[prev.Phase] || s.BytesDone < prev.BytesDone || s.TracksDone < prev.TracksDone {
			t.Fatalf("write %d went backwards: %+v after %+v", i, s.Progress, prev.Progress)
		}
		if s.BytesDone > s.BytesTotal || (s.Phase != export.PhaseDone && s.Percent >= 100) {
			t.Fatalf("write %d: bytes %d/%d percent %v", i, s.BytesDone, s.BytesTotal, s.Percent)
		}
		seen[s.Phase] = true
		prev = s
	}
	if !seen[export.PhaseArchiving] || !seen[export.PhaseDone] {
		t.Fatalf("phases seen %v, want archiving and done", seen)
	}
	if prev.BytesTotal != f.bytes || prev.TracksTotal != len(f.tracks) {
		t.Fatalf("final totals %d bytes, %d tracks; want %d, %d", prev.BytesTotal, prev.TracksTotal, f.bytes, len(f.tracks))
	}
}

// A track whose read keeps breaking fails the attempt and aborts the
// upload: no object, no unfinished upload. On the last attempt the job is
// failed; before it, the job waits for the retry.
func TestFailingReadAbortsUpload(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			for _, tc := range []struct {
				name       string
				attempt    int
				wantStatus store.JobStatus
				permanent  bool
			}{
				{"first attempt", 0, store.JobPending, false},
				{"last attempt", 3, store.JobFailed, true},
			} {
				t.Run(tc.name, func(t *testing.T) {
					bb := b
					if tc.name == "last attempt" { // fresh storage and store per case
						bb = map[string]func(*testing.T) backend{"file": fileBackend, "s3": s3Backend}[b.name](t)
					}
					st := storetest.SQLite(t)
					bad := &faulty{Storage: bb.storage, FailAfter: 1 << 20, FailTimes: -1}
					e := newEnv(t, bb, envOptions{store: st, storage: bad})
					f := seed(t, st, bb.storage)
					bad.FailKey = f.tracks[2].FileKey // "Sunrise (2)", 2 MB
					j, args := e.request(t)
					err := e.svc.Run(context.Background(), args, task(j.TaskID, tc.attempt, 3, nil))
					if err == nil || !errors.Is(err, errInjected) || job.IsPermanent(err) != tc.permanent {
						t.Fatalf("Run = %v; want the injected failure, permanent=%v", err, tc.permanent)
					}
					row := e.job(t, j.ID)
					if row.Status != tc.wantStatus || !strings.Contains(row.Error, "injected read failure") ||
						!strings.Contains(row.Error, fmt.Sprintf("track %d", f.tracks[2].ID)) {
						t.Fatalf("job row: status %s error %q; want %s naming track %d", row.Status, row.Error, tc.wantStatus, f.tracks[2].ID)
					}
					// Resumed at the failing byte, ReadAttempts (3) times in all.
					if got := bad.openedAt(bad.FailKey); len(got) != 3 || got[1] != 1<<20 || got[2] != 1<<20 {
						t.Fatalf("opens of the failing track at offsets %v, want [0 1048576 1048576]", got)
					}
					if n := bb.pending(t, "exports/"); n != 0 {
						t.Fatalf("%d unfinished uploads after the failure", n)
					}
					key := "exports/" + j.ID + "/plyr-export-alice.test.zip"
					if _, err := bb.storage.Stat(context.Background(), key); !errors.Is(err, storage.ErrNotExist) {
						t.Fatalf("Stat(%s) after failure = %v, want ErrNotExist", key, err)
					}
				})
			}
		})
	}
}

// A read that breaks once resumes at the byte it reached: the entry is
// intact (the CRC check in checkZip reads every byte).
func TestBrokenReadResumes(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			flaky := &faulty{Storage: b.storage, FailAfter: 1<<20 + 333, FailTimes: 1}
			e := newEnv(t, b, envOptions{storage: flaky})
			f := seed(t, e.store, b.storage)
			flaky.FailKey = f.tracks[0].FileKey
			j, args := e.request(t)
			if err := e.svc.Run(context.Background(), args, task(j.TaskID, 0, 3, nil)); err != nil {
				t.Fatal(err)
			}
			if got := flaky.openedAt(flaky.FailKey); len(got) != 2 || got[1] != 1<<20+333 {
				t.Fatalf("opens at %v, want a resume at %d", got, 1<<20+333)
			}
			checkZip(t, b.fetch(t, export.StateOf(e.job(t, j.ID)).Result.Key), f)
		})
	}
}

// Cancel stops a running export promptly, aborts the upload and leaves the
// job cancelled — through the injected task canceller (asynq's
// CancelProcessing) or, without one, through the progress loop reading the
// row.
func TestCancel(t *testing.T) {
	for _, b := range backends(t) {
		for _, viaTask := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/canceller=%v", b.name, viaTask), func(t *testing.T) {
				bb := map[string]func(*testing.T) backend{"file": fileBackend, "s3": s3Backend}[b.name](t)
				slow := &faulty{Storage: bb.storage, Delay: 5 * time.Millisecond, ReadSize: 32 << 10}
				runCtx, cancelRun := context.WithCancel(context.Background())
				defer cancelRun()
				var cancelled []string
				var mu sync.Mutex
				o := envOptions{storage: slow}
				if viaTask {
					o.cancel = func(ctx context.Context, taskID string) error {
						mu.Lock()
						cancelled = append(cancelled, taskID)
						mu.Unlock()
						cancelRun() // what asynq does to the handler's context
						return nil
					}
				}
				e := newEnv(t, bb, o)
				seed(t, e.store, bb.storage)
				j, args := e.request(t)

				done := make(chan error, 1)
				go func() { done <- e.svc.Run(runCtx, args, task(j.TaskID, 0, 3, nil)) }()
				e.waitJob(t, j.ID, func(j store.Job) bool { return j.Phase == "archiving" && j.Progress > 5 })

				cj, err := e.svc.Cancel(context.Background(), j.ID)
				if err != nil || cj.Status != store.JobCancelled {
					t.Fatalf("Cancel = %+v, %v", cj, err)
				}
				start := time.Now()
				select {
				case err = <-done:
				case <-time.After(5 * time.Second):
					t.Fatal("Run did not stop within 5s of Cancel")
				}
				t.Logf("stopped %s after Cancel", time.Since(start))
				if !errors.Is(err, export.ErrCancelled) || !job.IsPermanent(err) {
					t.Fatalf("Run = %v, want a permanent ErrCancelled", err)
				}
				row := e.job(t, j.ID)
				if row.Status != store.JobCancelled || row.CompletedAt.IsZero() {
					t.Fatalf("job row status %s after cancel", row.Status)
				}
				if viaTask {
					mu.Lock()
					if len(cancelled) != 1 || cancelled[0] != j.TaskID {
						t.Fatalf("task canceller called with %v, want [%s]", cancelled, j.TaskID)
					}
					mu.Unlock()
				}
				if n := bb.pending(t, "exports/"); n != 0 {
					t.Fatalf("%d unfinished uploads after cancel", n)
				}
				if _, err := bb.storage.Stat(context.Background(), "exports/"+j.ID+"/plyr-export-alice.test.zip"); !errors.Is(err, storage.ErrNotExist) {
					t.Fatalf("object exists after cancel: %v", err)
				}
				// Cancelling again: not active.
				if _, err := e.svc.Cancel(context.Background(), j.ID); !errors.Is(err, export.ErrNotActive) {
					t.Fatalf("second Cancel = %v, want ErrNotActive", err)
				}
				// A retry of the cancelled task does nothing.
				if err := e.svc.Run(context.Background(), args, task(j.TaskID, 1, 3, nil)); !errors.Is(err, export.ErrCancelled) || !job.IsPermanent(err) {
					t.Fatalf("rerun of a cancelled export = %v, want a permanent ErrCancelled", err)
				}
			})
		}
	}
}

// A worker shutdown cancels the context without cancelling the job: the
// upload is aborted, the job goes back to pending, the error is not
// permanent (the task is requeued), and the next run completes.
func TestShutdownRequeues(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			slow := &faulty{Storage: b.storage, Delay: 5 * time.Millisecond, ReadSize: 32 << 10}
			e := newEnv(t, b, envOptions{storage: slow})
			f := seed(t, e.store, b.storage)
			j, args := e.request(t)
			ctx, shutdown := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- e.svc.Run(ctx, args, task(j.TaskID, 0, 3, nil)) }()
			e.waitJob(t, j.ID, func(j store.Job) bool { return j.Phase == "archiving" && j.Progress > 5 })
			shutdown()
			var err error
			select {
			case err = <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("Run did not stop within 5s of shutdown")
			}
			if !errors.Is(err, context.Canceled) || job.IsPermanent(err) {
				t.Fatalf("Run = %v, want a retryable context.Canceled", err)
			}
			row := e.job(t, j.ID)
			if row.Status != store.JobPending || !strings.Contains(row.Message, "interrupted") {
				t.Fatalf("job row: %s %q, want pending/interrupted", row.Status, row.Message)
			}
			if n := b.pending(t, "exports/"); n != 0 {
				t.Fatalf("%d unfinished uploads after shutdown", n)
			}
			slow.Delay, slow.ReadSize = 0, 0
			if err := e.svc.Run(context.Background(), args, task(j.TaskID, 0, 3, nil)); err != nil {
				t.Fatalf("rerun: %v", err)
			}
			checkZip(t, b.fetch(t, export.StateOf(e.job(t, j.ID)).Result.Key), f)
		})
	}
}

// A worker that crashed mid-upload left an unfinished upload and a running
// job. The retry aborts the stale upload and produces a complete zip; a
// rerun of the finished export leaves it intact.
func TestRerunAfterCrash(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, b, envOptions{})
			f := seed(t, e.store, b.storage)
			j, args := e.request(t)
			running := store.JobRunning
			if _, err := e.store.UpdateJob(ctx, j.ID, store.JobUpdate{Status: &running}); err != nil {
				t.Fatal(err)
			}
			key := "exports/" + j.ID + "/plyr-export-alice.test.zip"
			crashCtx, crash := context.WithCancel(ctx)
			stale, err := b.storage.Create(crashCtx, key, storage.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := stale.Write(make([]byte, storage.MinPartSize+1)); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(5 * time.Second)
			for b.pending(t, "exports/"+j.ID+"/") != 1 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			crash() // the process "dies": no Complete, no Abort
			if n := b.pending(t, "exports/"+j.ID+"/"); n != 1 {
				t.Fatalf("%d unfinished uploads before the retry, want the crashed one", n)
			}

			if err := e.svc.Run(ctx, args, task(j.TaskID, 1, 3, nil)); err != nil {
				t.Fatalf("retry after crash: %v", err)
			}
			if n := b.pending(t, "exports/"); n != 0 {
				t.Fatalf("%d unfinished uploads after the retry", n)
			}
			first := b.fetch(t, key)
			checkZip(t, first, f)

			// The queue redelivers the finished task: nothing changes.
			if err := e.svc.Run(ctx, args, task(j.TaskID, 1, 3, nil)); err != nil {
				t.Fatalf("rerun of a done export: %v", err)
			}
			if again := b.fetch(t, key); string(again) != string(first) {
				t.Fatal("rerun of a done export changed the zip")
			}
			if row := e.job(t, j.ID); row.Status != store.JobDone {
				t.Fatalf("job %s after rerun, want done", row.Status)
			}
		})
	}
}

// Many concurrent requests for one artist create one job and enqueue once;
// every caller gets that job. Both store backends enforce it.
func TestOneExportPerArtist(t *testing.T) {
	for name, open := range map[string]func(testing.TB) store.Store{"sqlite": storetest.SQLite, "postgres": storetest.Postgres} {
		t.Run(name, func(t *testing.T) {
			st := open(t)
			b := fileBackend(t)
			e := newEnv(t, b, envOptions{store: st})
			if err := st.UpsertArtist(context.Background(), store.Artist{DID: artistDID, Handle: "alice.test"}); err != nil {
				t.Fatal(err)
			}
			const callers = 16
			type out struct {
				j       store.Job
				created bool
				err     error
			}
			outs := make([]out, callers)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range callers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					outs[i].j, outs[i].created, outs[i].err = e.svc.Request(context.Background(), artistDID)
				}()
			}
			close(start)
			wg.Wait()
			created := 0
			for i, o := range outs {
				if o.err != nil {
					t.Fatalf("caller %d: %v", i, o.err)
				}
				if o.created {
					created++
				}
				if o.j.ID != outs[0].j.ID {
					t.Fatalf("caller %d got job %s, caller 0 got %s", i, o.j.ID, outs[0].j.ID)
				}
			}
			if calls := e.enq.calls(); created != 1 || len(calls) != 1 || calls[0].ExportID != outs[0].j.ID {
				t.Fatalf("%d created, enqueued %v; want exactly one for %s", created, calls, outs[0].j.ID)
			}
			// Once it is finished, a new request starts a new export.
			if _, err := e.svc.Cancel(context.Background(), outs[0].j.ID); err != nil {
				t.Fatal(err)
			}
			j, created2, err := e.svc.Request(context.Background(), artistDID)
			if err != nil || !created2 || j.ID == outs[0].j.ID {
				t.Fatalf("request after the first finished = %s created=%v %v; want a new job", j.ID, created2, err)
			}
		})
	}
}

// A failed enqueue marks the new job failed with the reason, so it does
// not block the artist's next request.
func TestEnqueueFailureFailsJob(t *testing.T) {
	e := newEnv(t, fileBackend(t), envOptions{})
	if err := e.store.UpsertArtist(context.Background(), store.Artist{DID: artistDID}); err != nil {
		t.Fatal(err)
	}
	e.enq.err = errors.New("redis: connection refused")
	j, created, err := e.svc.Request(context.Background(), artistDID)
	if !errors.Is(err, export.ErrEnqueue) || !created {
		t.Fatalf("Request = created %v, %v; want ErrEnqueue", created, err)
	}
	row := e.job(t, j.ID)
	if row.Status != store.JobFailed || row.Error != "enqueue failed: redis: connection refused" {
		t.Fatalf("job row %s %q, want failed with the enqueue error", row.Status, row.Error)
	}
	e.enq.err = nil
	j2, created, err := e.svc.Request(context.Background(), artistDID)
	if err != nil || !created || j2.ID == j.ID {
		t.Fatalf("next Request = %s created=%v %v; want a new job", j2.ID, created, err)
	}
}

// A pending job that never got a task (its requester died before the
// enqueue) is failed by the next request, which starts a new export.
func TestOrphanedJobIsReplaced(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, fileBackend(t), envOptions{})
	if err := e.store.UpsertArtist(ctx, store.Artist{DID: artistDID}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		age      time.Duration
		replaced bool
	}{
		{"fresh orphan is left alone (its enqueue may be in flight)", time.Second, false},
		{"old orphan is replaced", 10 * time.Minute, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old, created, err := e.store.CreateJobOnce(ctx, store.Job{
				ID: "orphan-" + fmt.Sprint(tc.replaced), Type: export.Kind, OwnerDID: artistDID, Status: store.JobPending,
				CreatedAt: time.Now().Add(-tc.age),
			})
			if err != nil || !created {
				t.Fatal(err)
			}
			j, created, err := e.svc.Request(ctx, artistDID)
			if err != nil {
				t.Fatal(err)
			}
			if created != tc.replaced || (j.ID != old.ID) == !tc.replaced {
				t.Fatalf("Request = %s created=%v; want replaced=%v of %s", j.ID, created, tc.replaced, old.ID)
			}
			if st := e.job(t, old.ID).Status; (st == store.JobFailed) != tc.replaced {
				t.Fatalf("orphan status %s", st)
			}
			if !tc.replaced {
				if _, err := e.svc.Cancel(ctx, old.ID); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// A task enqueued without Request (the generic task API or CLI) gets its
// job row when it runs; one for an artist who already has an active export
// is refused for good.
func TestRunWithoutRequest(t *testing.T) {
	ctx := context.Background()
	b := fileBackend(t)
	e := newEnv(t, b, envOptions{})
	f := seed(t, e.store, b.storage)
	args := tasks.MediaExportArgs{ExportID: "direct-1", ArtistDID: artistDID}
	if err := e.svc.Run(ctx, args, task("t-direct", 0, 3, nil)); err != nil {
		t.Fatal(err)
	}
	row := e.job(t, "direct-1")
	if row.Status != store.JobDone || row.TaskID != "t-direct" || row.OwnerDID != artistDID {
		t.Fatalf("adopted job %+v", row)
	}
	checkZip(t, b.fetch(t, export.StateOf(row).Result.Key), f)

	active, _ := e.request(t)
	err := e.svc.Run(ctx, tasks.MediaExportArgs{ExportID: "direct-2", ArtistDID: artistDID}, task("t-direct-2", 0, 3, nil))
	if !job.IsPermanent(err) || !strings.Contains(err.Error(), active.ID) {
		t.Fatalf("second direct export while %s is active = %v; want a permanent refusal naming it", active.ID, err)
	}
}

func TestRequestValidates(t *testing.T) {
	e := newEnv(t, fileBackend(t), envOptions{})
	for _, tc := range []struct {
		did  string
		want error
	}{
		{"not-a-did", nil},
		{"did:plc:nobodyhere00000000000000", store.ErrNotFound},
	} {
		_, _, err := e.svc.Request(context.Background(), tc.did)
		if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) || (tc.want == nil && !strings.Contains(err.Error(), "artist_did")) {
			t.Errorf("Request(%q) = %v", tc.did, err)
		}
	}
	if n := len(e.enq.calls()); n != 0 {
		t.Fatalf("%d enqueues for invalid requests", n)
	}
}

func TestExportID(t *testing.T) {
	id, err := export.ExportID([]byte(`{"export_id":"E1","artist_did":"` + artistDID + `"}`))
	if err != nil || id != "E1" {
		t.Fatalf("ExportID = %q, %v", id, err)
	}
	if _, err := export.ExportID([]byte(`{"export_id":""}`)); err == nil {
		t.Fatal("ExportID of an invalid payload succeeded")
	}
}

// An operator's cancel of the task alone (the dashboard's cancel button,
// `plyrtasks tasks cancel`), without export.Service.Cancel: the worker ends
// the run's context with job.ErrCancelled as its cause, and the export
// stops, aborts the upload and ends cancelled, instead of going back to
// pending and starting over as after a shutdown.
func TestOperatorCancelOfTheTaskCancelsTheExport(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			slow := &faulty{Storage: b.storage, Delay: 5 * time.Millisecond, ReadSize: 32 << 10}
			e := newEnv(t, b, envOptions{storage: slow})
			seed(t, e.store, b.storage)
			j, args := e.request(t)
			runCtx, cancelRun := context.WithCancelCause(context.Background())
			defer cancelRun(nil)
			done := make(chan error, 1)
			go func() { done <- e.svc.Run(runCtx, args, task(j.TaskID, 0, 3, nil)) }()
			e.waitJob(t, j.ID, func(j store.Job) bool { return j.Phase == "archiving" && j.Progress > 5 })

			cancelRun(job.ErrCancelled)
			var err error
			select {
			case err = <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("Run did not stop within 5s of the cancel")
			}
			if !errors.Is(err, export.ErrCancelled) || !job.IsPermanent(err) {
				t.Fatalf("Run = %v, want a permanent ErrCancelled", err)
			}
			if row := e.job(t, j.ID); row.Status != store.JobCancelled {
				t.Fatalf("job row status %s, want cancelled", row.Status)
			}
			if n := b.pending(t, "exports/"); n != 0 {
				t.Fatalf("%d unfinished uploads after cancel", n)
			}
		})
	}
}
