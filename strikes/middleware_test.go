package strikes_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/plyr-fm/plyrtasks/client"
	"github.com/plyr-fm/plyrtasks/job"
	"github.com/plyr-fm/plyrtasks/logging"
	"github.com/plyr-fm/plyrtasks/strikes"
	"github.com/plyr-fm/plyrtasks/tasks"
)

// exportRegistry is a registry with a counting export:media handler and
// the watcher's middleware.
func exportRegistry(w *strikes.Watcher, ran *atomic.Int32) *job.Registry {
	reg := job.NewRegistry(tasks.All())
	job.Register(reg, func(context.Context, *job.Job[tasks.MediaExportArgs]) error {
		ran.Add(1)
		return nil
	})
	reg.Use(w.Middleware())
	return reg
}

func payload(t *testing.T, artist string) []byte {
	b, err := tasks.Encode(tasks.MediaExportArgs{ExportID: "e1", ArtistDID: artist})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestMiddlewareSkipsStruckTasks runs tasks through a Registry (inside the
// default logging, metrics and recovery chain) against strikes in a real
// Redis.
func TestMiddlewareSkipsStruckTasks(t *testing.T) {
	db := srv.DB(t)
	w := startWatcher(t, srv.Client(t, db), time.Hour)
	s := strikes.NewStore(srv.Client(t, db), quiet())
	if _, err := s.Strike(t.Context(), rule(t, "export:media", "artist_did=did:plc:bad"), "artist under review"); err != nil {
		t.Fatal(err)
	}
	if eventually(t, time.Second, func() bool { return len(w.Strikes()) == 1 }) < 0 {
		t.Fatal("strike not seen")
	}
	var ran atomic.Int32
	var logs bytes.Buffer
	h := job.Chain(exportRegistry(w, &ran).Handler(), job.DefaultMiddleware(slog.New(slog.NewJSONHandler(&logs, nil)), nil)...)

	tests := []struct {
		artist  string
		struck  bool
		outcome string
	}{
		{"did:plc:bad", true, job.OutcomeStruck},
		{"did:plc:good", false, job.OutcomeOK},
	}
	for _, tt := range tests {
		t.Run(tt.artist, func(t *testing.T) {
			ran.Store(0)
			logs.Reset()
			err := h(t.Context(), &job.Task{Kind: "export:media", Payload: payload(t, tt.artist), ID: "t-" + tt.artist, Queue: "bulk", MaxRetry: 3})
			if tt.struck {
				var se *strikes.StruckError
				if !errors.Is(err, job.ErrStruck) || !job.IsPermanent(err) || !errors.As(err, &se) {
					t.Fatalf("err = %v, want a permanent StruckError", err)
				}
				if want := "struck: artist under review (strike export:media|artist_did=did:plc:bad)"; err.Error() != want {
					t.Errorf("err = %q, want %q", err, want)
				}
				if ran.Load() != 0 {
					t.Error("the handler ran for a struck task")
				}
			} else if err != nil || ran.Load() != 1 {
				t.Fatalf("err = %v, ran = %d; want the handler run once", err, ran.Load())
			}
			var line map[string]any
			if err := json.Unmarshal(logs.Bytes(), &line); err != nil {
				t.Fatalf("log %q: %v", logs.String(), err)
			}
			if line["outcome"] != tt.outcome {
				t.Errorf("logged outcome %v, want %s", line["outcome"], tt.outcome)
			}
		})
	}
}

// TestStruckTaskArchivedThenRetriedAfterRestore: a queued task that comes up
// while struck is archived by a real asynq.Server with the reason, and runs
// once the strike is restored and the task retried.
func TestStruckTaskArchivedThenRetriedAfterRestore(t *testing.T) {
	db := srv.DB(t)
	rc := srv.Client(t, db)
	w := startWatcher(t, rc, time.Hour)
	s := strikes.NewStore(rc, quiet())
	artist := rule(t, "export:media", "artist_did=did:plc:bad")
	if _, err := s.Strike(t.Context(), artist, "artist under review"); err != nil {
		t.Fatal(err)
	}
	if eventually(t, time.Second, func() bool { return len(w.Strikes()) == 1 }) < 0 {
		t.Fatal("strike not seen")
	}

	var ran atomic.Int32
	h := job.Chain(exportRegistry(w, &ran).Handler(), job.DefaultMiddleware(logging.Discard(), nil)...)
	const queue = "tst:bulk"
	worker := asynq.NewServerFromRedisClient(rc, asynq.Config{
		Concurrency: 2, Queues: map[string]int{queue: 1}, TaskCheckInterval: 20 * time.Millisecond,
		Logger: logging.AsynqLogger(logging.Discard()),
	})
	if err := worker.Start(asynq.HandlerFunc(func(ctx context.Context, at *asynq.Task) error {
		id, _ := asynq.GetTaskID(ctx)
		retried, _ := asynq.GetRetryCount(ctx)
		maxRetry, _ := asynq.GetMaxRetry(ctx)
		return h(ctx, &job.Task{Kind: at.Type(), Payload: at.Payload(), ID: id, Queue: "bulk", Attempt: retried, MaxRetry: maxRetry})
	})); err != nil {
		t.Fatal(err)
	}
	defer worker.Shutdown()

	aq := asynq.NewClientFromRedisClient(rc)
	insp := asynq.NewInspectorFromRedisClient(rc)
	enqueue := func(artist string) string {
		info, err := aq.Enqueue(asynq.NewTask("export:media", payload(t, artist)), asynq.Queue(queue), asynq.MaxRetry(5), asynq.Retention(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		return info.ID
	}
	stateOf := func(id string) (*asynq.TaskInfo, bool) {
		info, err := insp.GetTaskInfo(queue, id)
		return info, err == nil
	}
	waitState := func(id string, want asynq.TaskState) *asynq.TaskInfo {
		t.Helper()
		var info *asynq.TaskInfo
		if eventually(t, 10*time.Second, func() bool {
			i, ok := stateOf(id)
			info = i
			return ok && i.State == want
		}) < 0 {
			t.Fatalf("task %s: state %v, want %v", id, info.State, want)
		}
		return info
	}

	struck := enqueue("did:plc:bad")
	fine := enqueue("did:plc:good")
	info := waitState(struck, asynq.TaskStateArchived)
	if want := "struck: artist under review (strike export:media|artist_did=did:plc:bad)"; info.LastErr != want {
		t.Errorf("archived with %q, want %q", info.LastErr, want)
	}
	if info.Retried != 0 {
		t.Errorf("struck task retried %d times before archiving, want 0", info.Retried)
	}
	waitState(fine, asynq.TaskStateCompleted)
	if n := ran.Load(); n != 1 {
		t.Fatalf("handler ran %d times, want 1 (the unstruck task)", n)
	}

	if _, err := s.Restore(t.Context(), artist); err != nil {
		t.Fatal(err)
	}
	if eventually(t, time.Second, func() bool { return len(w.Strikes()) == 0 }) < 0 {
		t.Fatal("restore not seen")
	}
	if err := insp.RunTask(queue, struck); err != nil {
		t.Fatal(err)
	}
	waitState(struck, asynq.TaskStateCompleted)
	if n := ran.Load(); n != 2 {
		t.Errorf("handler ran %d times, want 2", n)
	}
}

// TestEnqueueMiddlewareRefusesStruck goes through a real client.Client: a
// struck enqueue is refused before Redis and leaves no task behind.
func TestEnqueueMiddlewareRefusesStruck(t *testing.T) {
	db := srv.DB(t)
	rc := srv.Client(t, db)
	w := startWatcher(t, rc, time.Hour)
	if _, err := strikes.NewStore(rc, quiet()).Strike(t.Context(), rule(t, "export:media", "artist_did=did:plc:bad"), "artist under review"); err != nil {
		t.Fatal(err)
	}
	if eventually(t, time.Second, func() bool { return len(w.Strikes()) == 1 }) < 0 {
		t.Fatal("strike not seen")
	}
	c := client.New(rc, client.Options{Namespace: "tst", Logger: logging.Discard(),
		EnqueueMiddleware: []client.EnqueueMiddleware{w.EnqueueMiddleware()}})

	_, err := c.Enqueue(t.Context(), tasks.MediaExportArgs{ExportID: "e1", ArtistDID: "did:plc:bad"})
	if !errors.Is(err, job.ErrStruck) || !strings.HasPrefix(err.Error(), "struck: artist under review") {
		t.Fatalf("err = %v, want the strike", err)
	}
	res, err := c.Enqueue(t.Context(), tasks.MediaExportArgs{ExportID: "e2", ArtistDID: "did:plc:good"})
	if err != nil || res.Outcome != client.Enqueued {
		t.Fatalf("unstruck enqueue = %+v, %v", res, err)
	}
	qi, err := asynq.NewInspectorFromRedisClient(rc).GetQueueInfo("tst:bulk")
	if err != nil {
		t.Fatal(err)
	}
	if qi.Size != 1 {
		t.Errorf("queue holds %d tasks, want 1 (the struck one never reached Redis)", qi.Size)
	}
}
