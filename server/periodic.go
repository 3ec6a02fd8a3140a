package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/plyr-fm/plyrtasks/internal/rdb"
	"github.com/plyr-fm/plyrtasks/job"
	"github.com/plyr-fm/plyrtasks/tasks"
)

// periodic enqueues every periodic task type (tasks.Def.Periodic) once per
// tick, across all workers: each worker runs one, and all of them enqueue
// the tick's task under the same ID, "<namespace>:<kind>:<slot>" with slot
// = ⌊now / interval⌋. The first enqueue wins; the others get
// asynq.ErrTaskIDConflict, which is the expected outcome, not an error.
// The task is kept (Retention) at least two intervals, so its ID stays
// taken for the rest of its slot even after it completed.
//
// Ticks fall on multiples of the interval since the Unix epoch, the same
// instants on every worker, so a tick is never skipped or doubled by
// workers whose timers drift apart.
//
// Why not asynq.Scheduler: it enqueues one task per instance per tick. The
// work-around of rewriting a TaskID option from PreEnqueueFunc (asynq
// v0.26.0 passes the entry's own option slice) races with the scheduler's
// heartbeat, which reads that slice from another goroutine, and its
// "@every" ticks are relative to each instance's start. This loop keeps
// asynqmon's scheduler view by publishing its entries and enqueue history
// in asynq's format (rdb.WriteSchedulerEntries).
type periodic struct {
	rdb       redis.UniversalClient
	aq        *asynq.Client
	log       *slog.Logger
	namespace string
	id        string // scheduler ID, as asynq's: host-independent here
	heartbeat time.Duration
	entries   []*periodicEntry

	done  chan struct{}
	loops sync.WaitGroup // the per-entry loops
	wg    sync.WaitGroup // the heartbeat
}

type periodicEntry struct {
	id      string // entry ID (asynqmon's history is per entry)
	kind    string
	every   time.Duration
	payload []byte
	queue   string
	opts    []asynq.Option // without the per-tick TaskID; never mutated

	mu   sync.Mutex
	prev time.Time
}

func newPeriodic(c redis.UniversalClient, reg *job.Registry, namespace string, log *slog.Logger) *periodic {
	p := &periodic{
		rdb:       c,
		aq:        asynq.NewClientFromRedisClient(c),
		log:       log,
		namespace: namespace,
		id:        "plyrtasks:" + uuid.NewString(),
		heartbeat: 10 * time.Second,
		done:      make(chan struct{}),
	}
	for _, def := range reg.Catalog().Defs() {
		// Only types this worker can run: a tick nobody handles would be
		// archived as unknown every interval.
		if def.Periodic <= 0 || !reg.Has(def.Kind) {
			continue
		}
		payload, err := tasks.Encode(def.NewArgs())
		if err != nil {
			log.Error("periodic task not scheduled: its empty args do not encode",
				slog.String("kind", def.Kind), slog.String("error", err.Error()))
			continue
		}
		queue := tasks.Namespaced(namespace, def.Opts.Queue)
		retention := max(roundUpSecond(def.Opts.Retention), roundUpSecond(2*def.Periodic))
		p.entries = append(p.entries, &periodicEntry{
			id:      uuid.NewString(),
			kind:    def.Kind,
			every:   def.Periodic,
			payload: payload,
			queue:   queue,
			opts: []asynq.Option{
				asynq.Queue(queue),
				asynq.MaxRetry(def.Opts.Retries()),
				asynq.Timeout(roundUpSecond(def.Opts.Timeout)),
				asynq.Retention(retention),
			},
		})
	}
	return p
}

func (p *periodic) start() {
	if len(p.entries) == 0 {
		return
	}
	p.wg.Add(1)
	go p.beat()
	p.loops.Add(len(p.entries))
	for _, e := range p.entries {
		go p.loop(e)
	}
}

func (p *periodic) shutdown() {
	close(p.done)
	p.wg.Wait()
}

// loop enqueues e's task at every tick until shutdown.
func (p *periodic) loop(e *periodicEntry) {
	defer p.loops.Done()
	for {
		timer := time.NewTimer(time.Until(nextTick(time.Now(), e.every)))
		select {
		case <-p.done:
			timer.Stop()
			return
		case <-timer.C:
		}
		now := time.Now()
		p.enqueue(e, now, now.UnixNano()/int64(e.every))
	}
}

// nextTick is the first multiple of every after now.
func nextTick(now time.Time, every time.Duration) time.Time {
	return time.Unix(0, (now.UnixNano()/int64(every)+1)*int64(every))
}

// slotTaskID is the ID every worker gives the task of one tick.
func slotTaskID(namespace, kind string, slot int64) string {
	return fmt.Sprintf("%s:%s:%d", namespace, kind, slot)
}

func (p *periodic) enqueue(e *periodicEntry, now time.Time, slot int64) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id := slotTaskID(p.namespace, e.kind, slot)
	opts := append(append(make([]asynq.Option, 0, len(e.opts)+1), e.opts...), asynq.TaskID(id))
	_, err := p.aq.EnqueueContext(ctx, asynq.NewTask(e.kind, e.payload), opts...)
	e.mu.Lock()
	e.prev = now
	e.mu.Unlock()
	// asynqmon shows Prev and Next now, not at the next heartbeat.
	defer p.publish()
	switch {
	case err == nil:
		p.log.Debug("periodic task enqueued", slog.String("kind", e.kind), slog.String("id", id))
		if err := rdb.RecordSchedulerEnqueue(ctx, p.rdb, e.id, id, now); err != nil {
			p.log.Debug("record periodic enqueue", slog.String("error", err.Error()))
		}
	case errors.Is(err, asynq.ErrTaskIDConflict):
		p.log.Debug("periodic task already enqueued by another worker", slog.String("kind", e.kind), slog.String("id", id))
	default:
		p.log.Warn("periodic task not enqueued", slog.String("kind", e.kind), slog.String("id", id), slog.String("error", err.Error()))
	}
}

// beat publishes the entries for asynqmon every heartbeat, and removes
// them at shutdown.
func (p *periodic) beat() {
	defer p.wg.Done()
	ticker := time.NewTicker(p.heartbeat)
	defer ticker.Stop()
	p.publish()
	for {
		select {
		case <-p.done:
			// After the loops: a tick in flight would publish the entries
			// again after they were cleared.
			p.loops.Wait()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := rdb.ClearSchedulerEntries(ctx, p.rdb, p.id); err != nil {
				p.log.Warn("clear scheduler entries", slog.String("error", err.Error()))
			}
			for _, e := range p.entries {
				_ = rdb.ClearSchedulerHistory(ctx, p.rdb, e.id)
			}
			return
		case <-ticker.C:
			p.publish()
		}
	}
}

func (p *periodic) publish() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	now := time.Now()
	entries := make([]rdb.SchedulerEntry, 0, len(p.entries))
	for _, e := range p.entries {
		e.mu.Lock()
		prev := e.prev
		e.mu.Unlock()
		opts := make([]string, 0, len(e.opts)+1)
		for _, o := range e.opts {
			opts = append(opts, o.String())
		}
		opts = append(opts, fmt.Sprintf("TaskID(%q)", p.namespace+":"+e.kind+":<slot>"))
		entries = append(entries, rdb.SchedulerEntry{
			ID:      e.id,
			Spec:    "@every " + e.every.String(),
			Type:    e.kind,
			Payload: e.payload,
			Options: opts,
			Next:    nextTick(now, e.every),
			Prev:    prev,
		})
	}
	if err := rdb.WriteSchedulerEntries(ctx, p.rdb, p.id, entries, 2*p.heartbeat); err != nil {
		p.log.Warn("publish scheduler entries", slog.String("error", err.Error()))
	}
}

// roundUpSecond rounds a positive d up to whole seconds (asynq stores
// seconds, truncating).
func roundUpSecond(d time.Duration) time.Duration {
	if d <= 0 {
		return d
	}
	return (d + time.Second - 1).Truncate(time.Second)
}
