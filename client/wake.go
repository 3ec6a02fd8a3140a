package client

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/plyr-fm/plyrtasks/internal/rdb"
)

// DefaultWakeWindow is WakeWorkers' default coalescing window.
const DefaultWakeWindow = 50 * time.Millisecond

// WakeWorkers returns an EnqueueMiddleware that wakes idle woken workers
// (server.Options.Wake) of namespace when a task lands pending: one
// PUBLISH on the namespace's wake channel, at most once per window per
// Client (0: DefaultWakeWindow), after the enqueue succeeded. A task
// enqueued inside the window relies on the workers the first one woke,
// which stay awake for their Linger: keep window below it (the server's
// minimum Linger is 200ms). A failed PUBLISH is ignored: the workers' idle
// check finds the task within TASK_CHECK_INTERVAL anyway.
//
// Scheduled tasks are not signalled (the idle check forwards them when
// due), nor duplicates or tasks run in-process.
func WakeWorkers(c redis.UniversalClient, namespace string, window time.Duration) EnqueueMiddleware {
	if window <= 0 {
		window = DefaultWakeWindow
	}
	if namespace == "" {
		namespace = "plyr"
	}
	channel := rdb.WakeChannel(namespace)
	var last atomic.Int64 // unix ns of the last PUBLISH
	return func(next EnqueueFunc) EnqueueFunc {
		return func(ctx context.Context, req *Request) (Result, error) {
			res, err := next(ctx, req)
			if err != nil || c == nil || res.Outcome != Enqueued || res.State != "pending" {
				return res, err
			}
			now := time.Now().UnixNano()
			prev := last.Load()
			if now-prev < int64(window) || !last.CompareAndSwap(prev, now) {
				return res, nil
			}
			pctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			_ = c.Publish(pctx, channel, res.Queue).Err()
			return res, nil
		}
	}
}
