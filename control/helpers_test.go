package control_test

import (
	"context"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/plyr-fm/plyrtasks/control"
	"github.com/plyr-fm/plyrtasks/internal/redistest"
	"github.com/plyr-fm/plyrtasks/logging"
	"github.com/plyr-fm/plyrtasks/strikes"
)

var srv *redistest.Server

func TestMain(m *testing.M) { os.Exit(redistest.MustMain(m, &srv)) }

const ns = "ctl"

// env is one test's Redis database with a Controller, and the Controls
// under test: the Controller itself, or a Remote through HTTPHandler.
type env struct {
	rc       *redis.Client
	ctl      *control.Controller
	controls control.Controls
	insp     *asynq.Inspector
	aq       *asynq.Client
	remote   bool
}

func newEnv(t *testing.T, remote bool) *env {
	t.Helper()
	rc := srv.Client(t, srv.DB(t))
	ctl := control.New(rc, control.Options{Namespace: ns, Logger: logging.Discard(), CancelWait: 5 * time.Second})
	e := &env{rc: rc, ctl: ctl, controls: ctl, insp: asynq.NewInspectorFromRedisClient(rc), aq: asynq.NewClientFromRedisClient(rc), remote: remote}
	if remote {
		ts := httptest.NewServer(ctl.HTTPHandler())
		t.Cleanup(ts.Close)
		e.controls = &control.Remote{BaseURL: ts.URL, By: "cli:tester"}
	}
	return e
}

// both runs f once with the Controller and once through HTTP.
func both(t *testing.T, f func(t *testing.T, e *env)) {
	for _, remote := range []bool{false, true} {
		name := "direct"
		if remote {
			name = "http"
		}
		t.Run(name, func(t *testing.T) { f(t, newEnv(t, remote)) })
	}
}

// enqueue puts a task on logical queue q and returns its ID.
func (e *env) enqueue(t *testing.T, kind, payload, q string, opts ...asynq.Option) string {
	t.Helper()
	info, err := e.aq.Enqueue(asynq.NewTask(kind, []byte(payload)), append([]asynq.Option{asynq.Queue(ns + ":" + q)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return info.ID
}

// state returns the task's state by the Inspector, "gone" when it no
// longer exists.
func (e *env) state(t *testing.T, q, id string) string {
	t.Helper()
	info, err := e.insp.GetTaskInfo(ns+":"+q, id)
	if err != nil {
		return "gone"
	}
	return info.State.String()
}

// waitState waits up to 10s for the task to reach want.
func (e *env) waitState(t *testing.T, q, id, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for e.state(t, q, id) != want {
		if time.Now().After(deadline) {
			t.Fatalf("task %s is %s, want %s", id, e.state(t, q, id), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// worker runs handler on the namespace's queues until the test ends.
func (e *env) worker(t *testing.T, handler asynq.HandlerFunc, queues ...string) {
	t.Helper()
	qs := map[string]int{}
	for _, q := range queues {
		qs[ns+":"+q] = 1
	}
	w := asynq.NewServerFromRedisClient(e.rc, asynq.Config{
		Concurrency: 2, Queues: qs, TaskCheckInterval: 20 * time.Millisecond,
		ShutdownTimeout: time.Second,
		// A failed run waits long in retry: each test sees its state.
		RetryDelayFunc: func(int, error, *asynq.Task) time.Duration { return time.Hour },
		Logger:         logging.AsynqLogger(logging.Discard()),
	})
	if err := w.Start(handler); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Shutdown)
}

func actorCtx(t *testing.T) context.Context {
	return strikes.WithActor(t.Context(), "cli:direct-tester")
}
