package server

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// repairer runs Server.Repair at start and every interval: asynq leaves a
// task's ID in its queue's sets when the task hash is deleted behind its
// back (by hand, by eviction, by a failed migration), and asynqmon's queue
// list then fails for the whole queue.
type repairer struct {
	repair   func(context.Context) (int, error)
	interval time.Duration
	log      *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newRepairer(repair func(context.Context) (int, error), interval time.Duration, log *slog.Logger) *repairer {
	ctx, cancel := context.WithCancel(context.Background())
	return &repairer{repair: repair, interval: interval, log: log, ctx: ctx, cancel: cancel}
}

func (r *repairer) start() {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		ticker := time.NewTicker(r.interval)
		defer ticker.Stop()
		for {
			r.run()
			select {
			case <-r.ctx.Done():
				return
			case <-ticker.C:
			}
		}
	}()
}

// shutdown stops the loop, interrupting a repair in progress.
func (r *repairer) shutdown() {
	r.cancel()
	r.wg.Wait()
}

func (r *repairer) run() {
	n, err := r.repair(r.ctx)
	switch {
	case err != nil && r.ctx.Err() == nil:
		r.log.Warn("repair of dangling task IDs failed", slog.Int("removed", n), slog.String("error", err.Error()))
	case n > 0:
		r.log.Warn("removed dangling task IDs (their task hash was gone)", slog.Int("removed", n))
	}
}
