package control

import (
	"context"
	"fmt"
	"log/slog"
	"slices"

	"github.com/plyr-fm/plyrtasks/internal/rdb"
)

// QueueInfo is one queue's state.
type QueueInfo struct {
	// Name is the logical queue ("bulk"); Queue the asynq name
	// ("plyr:bulk").
	Name   string `json:"name"`
	Queue  string `json:"queue"`
	Paused bool   `json:"paused"`
	// Size is every task in the queue but completed ones.
	Size      int `json:"size"`
	Pending   int `json:"pending"`
	Active    int `json:"active"`
	Scheduled int `json:"scheduled"`
	Retry     int `json:"retry"`
	Archived  int `json:"archived"`
	Completed int `json:"completed"`
	// ProcessedToday and FailedToday count runs since midnight UTC.
	ProcessedToday int `json:"processed_today"`
	FailedToday    int `json:"failed_today"`
	// LatencySeconds is how long the oldest pending task has waited.
	LatencySeconds float64 `json:"latency_seconds"`
	// MemoryBytes is asynq's sampled estimate of the queue's memory use.
	MemoryBytes int64 `json:"memory_bytes"`
}

// Queues returns every queue of the namespace, declared ones included
// (all zero until their first task), sorted by name.
func (c *Controller) Queues(ctx context.Context) ([]QueueInfo, error) {
	known, err := c.knownQueues()
	if err != nil {
		return nil, err
	}
	existing, err := c.existingQueues()
	if err != nil {
		return nil, err
	}
	out := make([]QueueInfo, 0, len(known))
	for _, q := range known {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		qi, err := c.queueInfo(ctx, q, slices.Contains(existing, q))
		if err != nil {
			return nil, err
		}
		out = append(out, *qi)
	}
	return out, nil
}

func (c *Controller) queueInfo(ctx context.Context, q string, exists bool) (*QueueInfo, error) {
	qi := &QueueInfo{Name: c.logical(q), Queue: q}
	if !exists {
		// asynq's stats need the queue to exist; a declared queue may
		// still have been paused ahead of its first task.
		n, err := c.rdb.Exists(ctx, rdb.QueueKeyPrefix(q)+"paused").Result()
		if err != nil {
			return nil, fmt.Errorf("queue %s: %w", q, err)
		}
		qi.Paused = n == 1
		return qi, nil
	}
	s, err := c.insp.GetQueueInfo(q)
	if err != nil {
		return nil, fmt.Errorf("queue %s: %w", q, err)
	}
	qi.Paused = s.Paused
	qi.Size, qi.Pending, qi.Active, qi.Scheduled = s.Size, s.Pending, s.Active, s.Scheduled
	qi.Retry, qi.Archived, qi.Completed = s.Retry, s.Archived, s.Completed
	qi.ProcessedToday, qi.FailedToday = s.Processed, s.Failed
	qi.LatencySeconds = s.Latency.Seconds()
	qi.MemoryBytes = s.MemoryUsage
	return qi, nil
}

// Pause stops workers from taking tasks of queue (logical or namespaced
// name; a declared queue may be paused before its first task). Tasks
// already running finish; producers keep enqueueing. Pausing a paused
// queue is not an error.
func (c *Controller) Pause(ctx context.Context, queue string) (*QueueInfo, error) {
	return c.setPaused(ctx, queue, true)
}

// Resume lets workers take tasks of queue again. Resuming a running queue
// is not an error.
func (c *Controller) Resume(ctx context.Context, queue string) (*QueueInfo, error) {
	return c.setPaused(ctx, queue, false)
}

func (c *Controller) setPaused(ctx context.Context, queue string, pause bool) (*QueueInfo, error) {
	q, err := c.resolveQueue(queue)
	if err != nil {
		return nil, err
	}
	existing, err := c.existingQueues()
	if err != nil {
		return nil, err
	}
	exists := slices.Contains(existing, q)
	before, err := c.queueInfo(ctx, q, exists)
	if err != nil {
		return nil, err
	}
	if before.Paused != pause {
		op, verb := c.insp.UnpauseQueue, "resume"
		if pause {
			op, verb = c.insp.PauseQueue, "pause"
		}
		if err := op(q); err != nil {
			// Another operator may have done the same meanwhile: the
			// state below says.
			c.log.DebugContext(ctx, "control: "+verb+" queue", slog.String("queue", q), slog.String("error", err.Error()))
		}
	}
	after, err := c.queueInfo(ctx, q, exists)
	if err != nil {
		return nil, err
	}
	if after.Paused != pause {
		return nil, fmt.Errorf("queue %s: still paused=%v", q, after.Paused)
	}
	if before.Paused != pause {
		msg := "control: queue resumed"
		if pause {
			msg = "control: queue paused"
		}
		c.log.InfoContext(ctx, msg, slog.String("queue", q))
	}
	if !pause {
		c.wake(ctx, q)
	}
	return after, nil
}

// wake signals woken workers (server.Options.Wake) that queue has work
// now, as a producer's enqueue does, so a retried task or a resumed queue
// does not wait for their idle check. Best effort: that check finds it
// within TASK_CHECK_INTERVAL anyway.
func (c *Controller) wake(ctx context.Context, queue string) {
	_ = c.rdb.Publish(ctx, rdb.WakeChannel(c.opts.Namespace), queue).Err()
}
