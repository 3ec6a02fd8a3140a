package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"sync"
	"testing"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/plyr-fm/plyrtasks/client"
	"github.com/plyr-fm/plyrtasks/internal/redistest"
	"github.com/plyr-fm/plyrtasks/job"
	"github.com/plyr-fm/plyrtasks/tasks"
)

var srv *redistest.Server

func TestMain(m *testing.M) { os.Exit(redistest.MustMain(m, &srv)) }

// redisFor returns a client and an inspector on a fresh database.
func redisFor(t *testing.T) (*redis.Client, *asynq.Inspector) {
	t.Helper()
	rc := srv.Client(t, srv.DB(t))
	return rc, asynq.NewInspectorFromRedisClient(rc)
}

// newClient returns a client closed at cleanup.
func newClient(t *testing.T, rc redis.UniversalClient, o client.Options) *client.Client {
	t.Helper()
	c := client.New(rc, o)
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, l := range bytes.Split(bytes.TrimSpace(b.buf.Bytes()), []byte("\n")) {
		if len(l) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(l, &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

func jsonLogger(w *syncBuffer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// likeRegistry has a pds:like handler running fn.
func likeRegistry(fn func(ctx context.Context, j *job.Job[tasks.LikeArgs]) error) *job.Registry {
	reg := job.NewRegistry(tasks.All())
	job.Register(reg, fn)
	return reg
}

var validLike = tasks.LikeArgs{SessionID: "sess-1", LikeID: 7, SubjectURI: "at://did:plc:abc/fm.plyr.track/3k", SubjectCID: "bafyreiabcdefgh"}

func payloadMap(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("payload %s: %v", b, err)
	}
	return m
}
