package bench

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// The single-Redis ceiling: the least work a reliable queue can do per
// task on this Redis — the enqueue writes the message and pushes its ID;
// the dequeue moves the ID to an active list and reads the message in one
// script; the ack drops both. No task system, no client-side work beyond
// go-redis. asynq's scripts do more per call (state, lease, stats) and its
// worker needs about three calls per task where this needs two, so a
// worker's tasks/s over this ceiling says how much of the Redis round-trip
// budget the stack spends.

var (
	ceilEnqueue = redis.NewScript(`
redis.call("HSET", KEYS[1] .. ARGV[1], "msg", ARGV[2])
return redis.call("LPUSH", KEYS[2], ARGV[1])`)
	ceilDequeue = redis.NewScript(`
local id = redis.call("RPOPLPUSH", KEYS[2], KEYS[3])
if not id then return false end
return {id, redis.call("HGET", KEYS[1] .. id, "msg")}`)
	ceilAck = redis.NewScript(`
redis.call("LREM", KEYS[3], 1, ARGV[1])
return redis.call("DEL", KEYS[1] .. ARGV[1])`)
	ceilKeys = []string{"ceil:{q}:t:", "ceil:{q}:pending", "ceil:{q}:active"}
	ceilMsg  = `{"type":"bench:noop","payload":"{\"t\":0}","queue":"default","retry":10,"timeout":300}`
)

func (b *runner) ceiling(ctx context.Context) (Ceiling, error) {
	o := b.o
	var c Ceiling
	if err := b.flush(ctx); err != nil {
		return c, err
	}
	var id atomic.Int64
	enqueue := func(ctx context.Context, cl redis.Scripter) error {
		return ceilEnqueue.Run(ctx, cl, ceilKeys, strconv.FormatInt(id.Add(1), 10), ceilMsg).Err()
	}
	rate := func(n, g int, op func(ctx context.Context) error) (float64, error) {
		var next atomic.Int64
		var firstErr error
		var once sync.Once
		var wg sync.WaitGroup
		start := time.Now()
		for range g {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for next.Add(1) <= int64(n) {
					if err := op(ctx); err != nil {
						once.Do(func() { firstErr = err })
						return
					}
				}
			}()
		}
		wg.Wait()
		if firstErr != nil {
			return 0, fmt.Errorf("bench: ceiling: %w", firstErr)
		}
		return float64(n) / time.Since(start).Seconds(), nil
	}
	var err error
	one := func(ctx context.Context) error { return enqueue(ctx, b.admin) }
	if c.EnqueueSingle, err = rate(o.EnqueueTasks, 1, one); err != nil {
		return c, err
	}
	if c.EnqueueConcurrent, err = rate(o.EnqueueTasks, o.EnqueueConcurrency, one); err != nil {
		return c, err
	}
	const pipe = 100
	batches := max(o.Tasks/pipe, 1)
	if c.Pipelined, err = rate(batches, o.EnqueueConcurrency, func(ctx context.Context) error {
		_, err := b.admin.Pipelined(ctx, func(p redis.Pipeliner) error {
			for range pipe {
				if err := enqueue(ctx, p); err != nil {
					return err
				}
			}
			return nil
		})
		return err
	}); err != nil {
		return c, err
	}
	c.Pipelined *= pipe

	// Process: a backlog of Tasks, drained by Concurrency goroutines.
	if err := b.flush(ctx); err != nil {
		return c, err
	}
	if _, err := rate(max(o.Tasks/pipe, 1), o.EnqueueConcurrency, func(ctx context.Context) error {
		_, err := b.admin.Pipelined(ctx, func(p redis.Pipeliner) error {
			for range pipe {
				if err := enqueue(ctx, p); err != nil {
					return err
				}
			}
			return nil
		})
		return err
	}); err != nil {
		return c, err
	}
	total := max(o.Tasks/pipe, 1) * pipe
	c.TasksPerSec, err = rate(total, o.Concurrency, func(ctx context.Context) error {
		v, err := ceilDequeue.Run(ctx, b.admin, ceilKeys).StringSlice()
		if err != nil {
			return fmt.Errorf("dequeue: %w", err)
		}
		return ceilAck.Run(ctx, b.admin, ceilKeys, v[0]).Err()
	})
	return c, err
}
