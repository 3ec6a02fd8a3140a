package redisconn

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/plyr-fm/plyrtasks/logging"
	"github.com/redis/go-redis/v9"
)

// lockedBuffer is an io.Writer safe for concurrent loggers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// warnLogger records asynq's warnings and errors, so a test can assert
// that asynq met no command it could not run.
func warnLogger(t *testing.T) (asynq.Logger, *lockedBuffer) {
	t.Helper()
	buf := &lockedBuffer{}
	l, err := logging.New(buf, "text", "warn")
	if err != nil {
		t.Fatal(err)
	}
	return logging.AsynqLogger(l), buf
}

// checkRedis does a SET/GET round trip with a key unique to the test.
func checkRedis(t *testing.T, c redis.UniversalClient) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	key := fmt.Sprintf("redisconn-test:%s:%d", t.Name(), time.Now().UnixNano())
	if err := c.Set(ctx, key, "v1", time.Minute).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	got, err := c.Get(ctx, key).Result()
	if err != nil || got != "v1" {
		t.Fatalf("GET = %q, %v; want v1", got, err)
	}
}

// asynqRoundTrip enqueues one task through an asynq.Client on c and
// processes it with an asynq.Server on c; it fails t unless the handler
// receives the exact payload and the Inspector then reports it processed.
func asynqRoundTrip(t *testing.T, c redis.UniversalClient, queue string) {
	t.Helper()
	logger, logs := warnLogger(t)
	client := asynq.NewClientFromRedisClient(c)
	payload := []byte(fmt.Sprintf(`{"track_id":%d}`, time.Now().UnixNano()%1000000))
	info, err := client.Enqueue(asynq.NewTask("test:roundtrip", payload), asynq.Queue(queue), asynq.Retention(time.Hour))
	if err != nil {
		t.Fatalf("enqueue: %v", err)
	}
	got := make(chan []byte, 1)
	srv := asynq.NewServerFromRedisClient(c, asynq.Config{
		Concurrency:       2,
		Queues:            map[string]int{queue: 1},
		TaskCheckInterval: 50 * time.Millisecond,
		Logger:            logger,
		LogLevel:          asynq.WarnLevel,
		ShutdownTimeout:   2 * time.Second,
	})
	if err := srv.Start(asynq.HandlerFunc(func(ctx context.Context, tk *asynq.Task) error {
		got <- tk.Payload()
		return nil
	})); err != nil {
		t.Fatalf("server start: %v", err)
	}
	select {
	case p := <-got:
		if !bytes.Equal(p, payload) {
			t.Errorf("handler got payload %s, want %s", p, payload)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("task %s not processed within 15s", info.ID)
	}
	srv.Shutdown()
	ins := asynq.NewInspectorFromRedisClient(c)
	ti, err := ins.GetTaskInfo(queue, info.ID)
	if err != nil {
		t.Fatalf("GetTaskInfo: %v", err)
	}
	if ti.State != asynq.TaskStateCompleted {
		t.Errorf("task state %v, want completed", ti.State)
	}
	if s := logs.String(); s != "" {
		t.Errorf("asynq logged warnings/errors:\n%s", s)
	}
}
