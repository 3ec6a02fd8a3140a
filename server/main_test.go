package server_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/plyr-fm/plyrtasks/client"
	"github.com/plyr-fm/plyrtasks/internal/redistest"
	"github.com/plyr-fm/plyrtasks/job"
	"github.com/plyr-fm/plyrtasks/server"
	"github.com/plyr-fm/plyrtasks/tasks"
)

var srv *redistest.Server

func TestMain(m *testing.M) { os.Exit(redistest.MustMain(m, &srv)) }

// Test task types.

// noopArgs is a one-off task.
type noopArgs struct {
	N int `json:"n"`
}

func (noopArgs) Kind() string { return "test:noop" }

// blockArgs blocks until its context ends (a long task).
type blockArgs struct{}

func (blockArgs) Kind() string { return "test:block" }

func (blockArgs) InsertOpts() tasks.Opts {
	return tasks.Opts{Queue: tasks.QueueDefault, MaxRetry: 3, Timeout: time.Hour}
}

// uniqueArgs is unique per Key for an hour.
type uniqueArgs struct {
	Key  string `json:"key"`
	Fail string `json:"fail,omitempty"` // "transient" or "permanent"
}

func (uniqueArgs) Kind() string { return "test:unique" }

func (uniqueArgs) InsertOpts() tasks.Opts {
	return tasks.Opts{Queue: tasks.QueueCritical, MaxRetry: 5, UniqueFor: time.Hour}
}

func (a uniqueArgs) UniqueKey() string { return a.Key }

// tickArgs is a periodic task (every second).
type tickArgs struct{}

func (tickArgs) Kind() string { return "test:tick" }

func testCatalog() *tasks.Catalog {
	tick := tasks.Declare[tickArgs]()
	tick.Periodic = time.Second
	tick.Internal = true
	return tasks.NewCatalog(tasks.Declare[noopArgs](), tasks.Declare[blockArgs](), tasks.Declare[uniqueArgs](), tick)
}

// recorder collects the tasks handlers saw.
type recorder struct {
	mu    sync.Mutex
	tasks []job.Task
}

func (r *recorder) add(t *job.Task) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tasks = append(r.tasks, *t)
}

func (r *recorder) all() []job.Task {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]job.Task(nil), r.tasks...)
}

func (r *recorder) count(kind string) int {
	n := 0
	for _, t := range r.all() {
		if t.Kind == kind {
			n++
		}
	}
	return n
}

// testRegistry handles every test type: noop and tick record and succeed,
// block waits for its context, unique fails as its args say.
func testRegistry(rec *recorder) *job.Registry {
	reg := job.NewRegistry(testCatalog())
	job.Register(reg, func(ctx context.Context, j *job.Job[noopArgs]) error { rec.add(j.Task); return nil })
	job.Register(reg, func(ctx context.Context, j *job.Job[tickArgs]) error { rec.add(j.Task); return nil })
	job.Register(reg, func(ctx context.Context, j *job.Job[blockArgs]) error {
		rec.add(j.Task)
		<-ctx.Done()
		return ctx.Err()
	})
	job.Register(reg, func(ctx context.Context, j *job.Job[uniqueArgs]) error {
		rec.add(j.Task)
		switch j.Args.Fail {
		case "transient":
			return io.ErrUnexpectedEOF
		case "permanent":
			return job.Permanent(io.ErrUnexpectedEOF)
		}
		return nil
	})
	return reg
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// fastOptions poll often so tests do not wait for the defaults.
func fastOptions() server.Options {
	return server.Options{
		TaskCheckInterval:        20 * time.Millisecond,
		DelayedTaskCheckInterval: 100 * time.Millisecond,
		ShutdownTimeout:          time.Second,
		DisablePeriodic:          true,
		Logger:                   discardLogger(),
	}
}

// env is one test's Redis database with a client and inspector on it.
type env struct {
	db     int
	rc     *redis.Client
	ins    *asynq.Inspector
	client *client.Client
}

func newEnv(t *testing.T) *env {
	t.Helper()
	db := srv.DB(t)
	rc := srv.Client(t, db)
	c := client.New(rc, client.Options{Catalog: testCatalog(), Logger: discardLogger()})
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return &env{db: db, rc: rc, ins: asynq.NewInspectorFromRedisClient(rc), client: c}
}

// start starts a server on e's database, shut down at cleanup. Each server
// gets its own Redis client, like a separate worker process.
func (e *env) start(t *testing.T, reg *job.Registry, o server.Options) *server.Server {
	t.Helper()
	s := server.New(srv.Client(t, e.db), reg, o)
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)
	return s
}

// waitFor polls cond every 10ms for up to d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	return len(p), nil
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}
