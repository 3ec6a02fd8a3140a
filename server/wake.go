package server

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/plyr-fm/plyrtasks/internal/rdb"
	"github.com/plyr-fm/plyrtasks/logging"
)

// The woken worker (Options.Wake).
//
// Why: asynq's processor sleeps, uninterruptibly, between ½ and 1½
// TaskCheckInterval after every poll that finds the queues empty, so a
// worker either polls often (low pickup latency, but several Redis
// commands per second per worker while idle: one script per queue per
// poll, plus the forwarder's two per queue, the janitor's, the heartbeat's
// three every 5 s and the cancel subscription's PING every 3 s) or picks
// tasks up late. asynq offers no way to interrupt that sleep, but a process
// may start and stop asynq servers at will.
//
// So an idle woken worker runs no asynq server at all. Every
// TaskCheckInterval it runs one script over all its queues
// (rdb.WakeCheck), which also does the idle part of the forwarder's and
// janitor's work, and it subscribes to the namespace's wake channel, on
// which producers publish (coalesced) when they enqueue a pending task
// (client.WakeWorkers). Work found or a wake starts an asynq server that
// polls every Wake.ActiveCheckInterval, whose first poll is immediate; it
// is stopped once, for Wake.Linger, no task started and no wake came and no
// task runs. While awake the worker is a plain asynq server, with every
// asynq loop (heartbeat, lease extension, recoverer, forwarder, janitor,
// cancellation) as usual.
//
// Concurrency stays bounded by Options.Concurrency: a server stopped while
// a task it had just dequeued is starting keeps draining it, the next
// server gets the remaining slots only, and a semaphore across servers
// holds back the rare task dequeued in the instant before its server
// stopped, before it reached the handler, until a slot frees.
type waker struct {
	s       *Server
	queues  []string
	channel string
	log     *slog.Logger

	slots    chan struct{} // running tasks, across servers: cap Concurrency
	signal   chan struct{} // a wake (subscription) or a pickup: cap 1
	finished chan struct{} // a task of a draining server ended: cap 1
	quit     chan struct{}
	stopped  chan struct{}

	lastActive atomic.Int64 // unix ns of the last wake or pickup

	// Owned by the loop goroutine.
	active      *awake
	draining    []*awake
	pendingWake bool // work waits for a slot held by a draining server
	checkFailed bool // the last check failed (logged once per outage)

	ps      *redis.PubSub
	closing sync.WaitGroup // shutdowns of drained servers

	// Counters, for tests and the bench.
	wakes  atomic.Int64 // asynq servers started
	checks atomic.Int64 // idle checks run
}

// awake is one asynq server the waker started.
type awake struct {
	srv         *asynq.Server
	concurrency int
	inflight    atomic.Int64
	draining    atomic.Bool
}

func newWaker(s *Server) *waker {
	return &waker{
		s:        s,
		queues:   slices.Sorted(maps.Keys(s.queues)),
		channel:  rdb.WakeChannel(s.opts.Namespace),
		log:      s.log,
		slots:    make(chan struct{}, s.opts.Concurrency),
		signal:   make(chan struct{}, 1),
		finished: make(chan struct{}, 1),
		quit:     make(chan struct{}),
		stopped:  make(chan struct{}),
	}
}

// wakeHealthCheck is how often the idle subscription PINGs Redis when no
// message came (go-redis' default is 3 s, a third of a command per second
// per worker for nothing): a dead connection is found within this time,
// and the idle check covers the wakes lost meanwhile.
const wakeHealthCheck = 30 * time.Second

func (w *waker) start() {
	w.ps = w.s.rdb.Subscribe(context.Background(), w.channel)
	msgs := w.ps.Channel(redis.WithChannelHealthCheckInterval(wakeHealthCheck))
	go func() {
		for range msgs {
			w.poke()
		}
	}()
	go w.run()
}

// poke records activity and asks the loop to make sure a server runs.
func (w *waker) poke() {
	w.lastActive.Store(time.Now().UnixNano())
	select {
	case w.signal <- struct{}{}:
	default:
	}
}

func (w *waker) shutdown() {
	close(w.quit)
	<-w.stopped
	_ = w.ps.Close()
}

func (w *waker) run() {
	defer close(w.stopped)
	o := w.s.opts
	timer := time.NewTimer(0) // the first check at once
	defer timer.Stop()
	for {
		select {
		case <-w.quit:
			w.stopAll()
			return
		case <-w.signal:
			if w.active == nil {
				w.wakeUp()
				resetTimer(timer, o.Wake.Linger/2)
			}
		case <-w.finished:
			w.reap()
			if w.pendingWake && w.active == nil {
				w.wakeUp()
				resetTimer(timer, o.Wake.Linger/2)
			}
		case <-timer.C:
			w.reap()
			if w.active == nil {
				if w.check() {
					w.wakeUp()
				}
			} else if w.idle() {
				w.sleep()
			}
			if w.active != nil {
				timer.Reset(o.Wake.Linger / 2)
			} else {
				timer.Reset(o.TaskCheckInterval)
			}
		}
	}
}

func resetTimer(t *time.Timer, d time.Duration) {
	t.Stop()
	select {
	case <-t.C:
	default:
	}
	t.Reset(d)
}

// check runs the idle check; it reports whether there is work.
func (w *waker) check() bool {
	w.checks.Add(1)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := rdb.WakeCheck(ctx, w.s.rdb, w.queues, time.Now())
	if err != nil {
		if !w.checkFailed {
			w.log.Warn("wake check failed", slog.String("error", err.Error()))
			w.checkFailed = true
		}
		return false
	}
	if w.checkFailed {
		w.log.Info("wake check works again")
		w.checkFailed = false
	}
	return res.Work()
}

// idle reports whether the awake server may stop: no pickup or wake for
// Linger and nothing running.
func (w *waker) idle() bool {
	since := time.Since(time.Unix(0, w.lastActive.Load()))
	return since >= w.s.opts.Wake.Linger && w.active.inflight.Load() == 0
}

// wakeUp starts an asynq server with the slots draining servers leave.
func (w *waker) wakeUp() {
	w.lastActive.Store(time.Now().UnixNano())
	slots := w.s.opts.Concurrency
	for _, d := range w.draining {
		slots -= int(d.inflight.Load())
	}
	if slots < 1 {
		w.pendingWake = true
		return
	}
	w.pendingWake = false
	level := max(logging.AsynqLevel(w.log), asynq.WarnLevel) // no start/stop lines per wake
	a := &awake{concurrency: slots}
	a.srv = w.s.newAsynq(slots, w.s.opts.Wake.ActiveCheckInterval, level)
	err := a.srv.Start(asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		a.inflight.Add(1)
		w.lastActive.Store(time.Now().UnixNano())
		defer func() {
			if a.inflight.Add(-1) == 0 && a.draining.Load() {
				select {
				case w.finished <- struct{}{}:
				default:
				}
			}
		}()
		// The hard bound: a task dequeued in the instant before its
		// server stopped can reach here after the next server took
		// every remaining slot; it waits for one.
		select {
		case w.slots <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		defer func() { <-w.slots }()
		return w.s.process(ctx, t)
	}))
	if err != nil {
		w.log.Error("wake: start asynq server", slog.String("error", err.Error()))
		return
	}
	w.wakes.Add(1)
	w.active = a
	w.log.Debug("worker awake", slog.Int("concurrency", slots))
}

// sleep stops the awake server. Stop waits for the processor's current
// poll or sleep (≤ 1.5 × ActiveCheckInterval); a task it dequeued just
// before keeps running in a draining server.
func (w *waker) sleep() {
	a := w.active
	w.active = nil
	a.draining.Store(true)
	a.srv.Stop()
	w.draining = append(w.draining, a)
	w.reap()
	w.log.Debug("worker asleep")
}

// reap shuts down the draining servers whose tasks have all ended. The
// shutdown runs beside the loop: it is quick (nothing runs) unless a task
// was dequeued in the instant before Stop and has not reached the handler
// yet, which Shutdown then waits for as usual (ShutdownTimeout).
func (w *waker) reap() {
	kept := w.draining[:0]
	for _, d := range w.draining {
		if d.inflight.Load() == 0 {
			w.closing.Add(1)
			go func() {
				defer w.closing.Done()
				d.srv.Shutdown()
			}()
			continue
		}
		kept = append(kept, d)
	}
	clear(w.draining[len(kept):])
	w.draining = kept
}

// stopAll shuts every server down at once, each giving its running tasks
// ShutdownTimeout as a plain worker's stop does.
func (w *waker) stopAll() {
	var wg sync.WaitGroup
	all := w.draining
	if w.active != nil {
		all = append(all, w.active)
	}
	for _, a := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.srv.Shutdown()
		}()
	}
	wg.Wait()
	w.closing.Wait()
	w.active, w.draining = nil, nil
}

// WakeStats counts what a woken worker did since Start: asynq servers
// started and idle checks run. Zero without Options.Wake.
type WakeStats struct {
	Wakes, Checks int64
}

// WakeStats returns the woken worker's counters.
func (s *Server) WakeStats() WakeStats {
	s.mu.Lock()
	w := s.wake
	s.mu.Unlock()
	if w == nil {
		return WakeStats{}
	}
	return WakeStats{Wakes: w.wakes.Load(), Checks: w.checks.Load()}
}
