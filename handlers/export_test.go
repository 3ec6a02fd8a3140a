package handlers

import (
	"archive/zip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/plyr-fm/plyrtasks/client"
	"github.com/plyr-fm/plyrtasks/config"
	"github.com/plyr-fm/plyrtasks/export"
	"github.com/plyr-fm/plyrtasks/export/audiogen"
	"github.com/plyr-fm/plyrtasks/internal/redistest"
	"github.com/plyr-fm/plyrtasks/job"
	"github.com/plyr-fm/plyrtasks/server"
	"github.com/plyr-fm/plyrtasks/storage"
	"github.com/plyr-fm/plyrtasks/store"
	"github.com/plyr-fm/plyrtasks/store/storetest"
	"github.com/plyr-fm/plyrtasks/tasks"
)

const exportArtist = "did:plc:handlerexport000000000000"

// seedExport stores an artist with three 1 MB WAV tracks, two titled the
// same, plus one whose audio is missing from storage.
func seedExport(t *testing.T, st store.Store, obj storage.Storage) {
	t.Helper()
	ctx := context.Background()
	if err := st.UpsertArtist(ctx, store.Artist{DID: exportArtist, Handle: "bob.test"}); err != nil {
		t.Fatal(err)
	}
	for i, title := range []string{"Intro", "Loop", "Loop", "Lost"} {
		key := "audio/" + string(rune('a'+i)) + ".wav"
		if title != "Lost" {
			tone := audiogen.Tone{Freq: 200 + 100*float64(i)}.ForSize(1 << 20)
			if _, err := storage.Put(ctx, obj, key, tone.Reader(), storage.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := st.CreateTrack(ctx, store.Track{ArtistDID: exportArtist, Title: title, FileKey: key, FileType: "wav",
			CreatedAt: time.Date(2025, 2, 1, i, 0, 0, 0, time.UTC)}); err != nil {
			t.Fatal(err)
		}
	}
}

// zipNames lists the entries of the zip at path.
func zipNames(t *testing.T, path string) []string {
	t.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
	}
	return names
}

// Without Deps.Storage or Deps.Exports, the handler opens STORAGE_URL's
// default (file storage under DATA_DIR) on first use, and runs a task
// enqueued without Request through the registry's pipeline.
func TestMediaExportFromConfig(t *testing.T) {
	dataDir := t.TempDir()
	st := storetest.SQLite(t)
	cfg := &config.Config{DataDir: dataDir, Storage: config.Storage{S3Region: "auto", ExportURLExpiry: time.Hour, ExportPartSize: 16 << 20}}
	obj, err := storage.NewFile(filepath.Join(dataDir, "storage"))
	if err != nil {
		t.Fatal(err)
	}
	seedExport(t, st, obj)

	reg := job.NewRegistry(tasks.All())
	if err := Register(reg, Deps{Config: cfg, Store: st}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, payload string
		permanent     bool
	}{
		{"invalid payload is archived", `{"export_id":"","artist_did":"x"}`, true},
		{"valid", `{"export_id":"exp-1","artist_did":"` + exportArtist + `"}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := reg.Handler()(context.Background(), &job.Task{Kind: export.Kind, Payload: []byte(tc.payload), ID: "t1", MaxRetry: 3})
			if tc.permanent {
				if !job.IsPermanent(err) {
					t.Fatalf("handler = %v, want a permanent error", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			j, err := st.GetJob(context.Background(), "exp-1")
			if err != nil || j.Status != store.JobDone {
				t.Fatalf("job = %+v, %v", j, err)
			}
			res := export.StateOf(j).Result
			want := []string{"Intro.wav", "Loop.wav", "Loop (2).wav", export.ManifestName}
			if got := zipNames(t, res.DownloadURL); strings.Join(got, "|") != strings.Join(want, "|") {
				t.Fatalf("zip entries %q, want %q", got, want)
			}
			if !strings.HasPrefix(res.DownloadURL, filepath.Join(dataDir, "storage", "exports", "exp-1")) {
				t.Fatalf("zip at %s, want under DATA_DIR/storage/exports/exp-1", res.DownloadURL)
			}
		})
	}
}

// slowStorage delays every read so a test can act mid-export.
type slowStorage struct {
	storage.Storage
	delay time.Duration
}

func (s slowStorage) Open(ctx context.Context, key string, off int64) (io.ReadCloser, error) {
	rc, err := s.Storage.Open(ctx, key, off)
	if err != nil {
		return nil, err
	}
	return slowReader{rc, s.delay}, nil
}

type slowReader struct {
	io.ReadCloser
	delay time.Duration
}

func (r slowReader) Read(p []byte) (int, error) {
	time.Sleep(r.delay)
	return r.ReadCloser.Read(p[:min(len(p), 16<<10)])
}

// exportWorld is a real worker on a real redis-server, the Go client, and
// an export service wired as app.go wires it.
type exportWorld struct {
	st   store.Store
	obj  storage.Storage
	svc  *export.Service
	rc   redis.UniversalClient
	insp *asynq.Inspector
}

func newExportWorld(t *testing.T, readDelay time.Duration) *exportWorld {
	t.Helper()
	rs := redistest.Start(t, redistest.Options{})
	rc := rs.Client(t, rs.DB(t))
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	const ns = "export-e2e"
	w := &exportWorld{st: storetest.SQLite(t), rc: rc, insp: asynq.NewInspectorFromRedisClient(rc)}
	f, err := storage.NewFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	w.obj = f
	seedExport(t, w.st, f)
	cl := client.New(rc, client.Options{Namespace: ns, Fallback: client.FallbackError, Logger: quiet})
	t.Cleanup(func() { _ = cl.Close(context.Background()) })
	w.svc, err = export.New(export.Options{
		Store: w.st, Storage: slowStorage{f, readDelay},
		Enqueuer: export.EnqueueFunc(func(ctx context.Context, a tasks.MediaExportArgs) (string, error) {
			res, err := cl.Enqueue(ctx, a, client.TaskID(a.ExportID), client.UniqueFor(0))
			return res.ID, err
		}),
		CancelTask:       func(_ context.Context, id string) error { return w.insp.CancelProcessing(id) },
		TaskExists:       export.InspectorTaskExists(w.insp, tasks.Namespaced(ns, tasks.QueueBulk)),
		ProgressInterval: 50 * time.Millisecond,
		Logger:           quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	reg := job.NewRegistry(tasks.All())
	if err := Register(reg, Deps{Store: w.st, Exports: w.svc, Logger: quiet}); err != nil {
		t.Fatal(err)
	}
	srv := server.New(rc, reg, server.Options{
		Namespace: ns, Concurrency: 2, DisablePeriodic: true, Logger: quiet,
		TaskCheckInterval: 10 * time.Millisecond, DelayedTaskCheckInterval: 100 * time.Millisecond,
		RetryDelay: func(int, error) time.Duration { return 50 * time.Millisecond },
	})
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	return w
}

// awaitTask waits (30s at most) for the task to reach one of states.
func (w *exportWorld) awaitTask(t *testing.T, id string, states ...asynq.TaskState) *asynq.TaskInfo {
	t.Helper()
	queue := tasks.Namespaced("export-e2e", tasks.QueueBulk)
	deadline := time.Now().Add(30 * time.Second)
	for {
		info, err := w.insp.GetTaskInfo(queue, id)
		if err == nil {
			for _, s := range states {
				if info.State == s {
					return info
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("task %s did not reach %v: %+v, %v", id, states, info, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// An export requested through the service runs on a real worker: the task
// completes with the final state as its result, the job is done, and the
// zip holds the tracks and the manifest.
func TestMediaExportThroughWorker(t *testing.T) {
	w := newExportWorld(t, 0)
	j, created, err := w.svc.Request(context.Background(), exportArtist)
	if err != nil || !created || j.TaskID != j.ID {
		t.Fatalf("Request = %+v created=%v %v", j, created, err)
	}
	info := w.awaitTask(t, j.TaskID, asynq.TaskStateCompleted, asynq.TaskStateArchived)
	if info.State != asynq.TaskStateCompleted {
		t.Fatalf("task %s: %s", info.State, info.LastErr)
	}
	var res export.State
	if err := json.Unmarshal(info.Result, &res); err != nil || res.Status != store.JobDone || res.Percent != 100 || res.Result == nil {
		t.Fatalf("task result %s (%v), want the done state", info.Result, err)
	}
	if res.Result.Tracks != 3 || len(res.Result.Missing) != 1 || res.Result.Missing[0].Title != "Lost" {
		t.Fatalf("result %+v, want 3 tracks and Lost missing", res.Result)
	}
	got := zipNames(t, res.Result.DownloadURL)
	if want := "Intro.wav|Loop.wav|Loop (2).wav|" + export.ManifestName; strings.Join(got, "|") != want {
		t.Fatalf("zip entries %q, want %s", got, want)
	}
}

// Cancelling a running export through the service (as DELETE
// /v1/tasks/{id} does) stops it on the worker: the task is archived, not
// retried, the job is cancelled and no zip or temp file remains.
func TestMediaExportCancelThroughWorker(t *testing.T) {
	w := newExportWorld(t, 10*time.Millisecond)
	ctx := context.Background()
	j, _, err := w.svc.Request(ctx, exportArtist)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		row, err := w.st.GetJob(ctx, j.ID)
		if err == nil && row.Phase == string(export.PhaseArchiving) && row.Progress > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("export never started archiving: %+v %v", row, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := w.svc.Cancel(ctx, j.ID); err != nil {
		t.Fatal(err)
	}
	info := w.awaitTask(t, j.TaskID, asynq.TaskStateArchived, asynq.TaskStateCompleted)
	if info.State != asynq.TaskStateArchived || !strings.Contains(info.LastErr, "cancel") {
		t.Fatalf("task %s (%q), want archived as cancelled", info.State, info.LastErr)
	}
	row, _ := w.st.GetJob(ctx, j.ID)
	if row.Status != store.JobCancelled {
		t.Fatalf("job %s, want cancelled", row.Status)
	}
	// The handler aborts its upload as it stops; give it a moment.
	root := w.obj.(*storage.File).Root()
	deadline = time.Now().Add(5 * time.Second)
	for {
		var left []string
		filepath.WalkDir(filepath.Join(root, "exports"), func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				left = append(left, d.Name())
			}
			return nil
		})
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("files left under exports/ after cancel: %v", left)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := w.svc.Cancel(ctx, j.ID); !errors.Is(err, export.ErrNotActive) {
		t.Fatalf("second cancel = %v", err)
	}
}
