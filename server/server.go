package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/plyr-fm/plyrtasks/internal/rdb"
	"github.com/plyr-fm/plyrtasks/job"
	"github.com/plyr-fm/plyrtasks/logging"
	"github.com/plyr-fm/plyrtasks/tasks"
)

// ErrNotRunning is returned (wrapped) by Ready when the server has not
// started or is shutting down.
var ErrNotRunning = errors.New("worker not running")

type state int

const (
	stateNew state = iota
	stateRunning
	stateStopping
	stateStopped
)

func (s state) String() string {
	return [...]string{"not started", "running", "shutting down", "stopped"}[s]
}

// Server is one worker process' task server. Start it once; Shutdown
// drains it.
type Server struct {
	rdb     redis.UniversalClient
	reg     *job.Registry
	opts    Options
	log     *slog.Logger
	handler job.HandlerFunc
	// queues are the namespaced asynq queue names with their priorities.
	queues map[string]int

	stopping atomic.Bool
	// runs maps the ID of each task running here to the channel its
	// runContext learns from why asynq cancelled it (handleError).
	runs sync.Map
	// bg counts background work Shutdown waits for (archiving cancelled
	// tasks).
	bg sync.WaitGroup
	// inflight counts handlers running; see awaitHandlers.
	inflight sync.WaitGroup

	mu       sync.Mutex
	state    state
	srv      *asynq.Server // without Wake
	wake     *waker        // with Wake
	periodic *periodic
	repair   *repairer
	// stopped is closed when a Shutdown has finished, so that a second,
	// concurrent Shutdown returns only then: its caller may close the Redis
	// client next, and asynq's cancel subscriber panics on a closed client
	// while it still runs.
	stopped chan struct{}
}

// New returns a server that runs reg's handlers over rdb. Configure reg
// (handlers, Registry.Use) before New. The server does not close rdb.
func New(rdb redis.UniversalClient, reg *job.Registry, opts Options) *Server {
	opts = opts.withDefaults()
	s := &Server{
		rdb:     rdb,
		reg:     reg,
		opts:    opts,
		stopped: make(chan struct{}),
		log:     opts.Logger,
		handler: job.Chain(reg.Handler(), job.DefaultMiddleware(opts.Logger, opts.Metrics, opts.Middleware...)...),
		queues:  map[string]int{},
	}
	for q, p := range opts.Queues {
		s.queues[tasks.Namespaced(opts.Namespace, q)] = p
	}
	return s
}

// Start validates the options, checks that Redis answers, and starts
// processing, the repair loop and (unless DisablePeriodic) the periodic
// scheduler. It returns at once.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != stateNew {
		return fmt.Errorf("server: Start: already %s", s.state)
	}
	if err := s.opts.Validate(); err != nil {
		return err
	}
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("server: redis: %w", err)
	}
	o := s.opts
	if o.Wake.Enabled {
		s.wake = newWaker(s)
		s.wake.start()
	} else {
		s.srv = s.newAsynq(o.Concurrency, o.TaskCheckInterval, logging.AsynqLevel(s.log))
		if err := s.srv.Start(asynq.HandlerFunc(s.process)); err != nil {
			return fmt.Errorf("server: %w", err)
		}
	}
	s.repair = newRepairer(s.Repair, o.RepairInterval, s.log)
	s.repair.start()
	if !o.DisablePeriodic {
		s.periodic = newPeriodic(s.rdb, s.reg, o.Namespace, s.log)
		s.periodic.start()
	}
	s.state = stateRunning
	s.log.Info("worker started", slog.String("namespace", o.Namespace),
		slog.Int("concurrency", o.Concurrency), slog.Any("queues", s.queueNames()))
	return nil
}

// newAsynq builds an asynq server over the options with the given
// concurrency and task check interval (the woken worker's servers differ
// from the plain one in those and in how much asynq logs).
func (s *Server) newAsynq(concurrency int, taskCheck time.Duration, level asynq.LogLevel) *asynq.Server {
	o := s.opts
	return asynq.NewServerFromRedisClient(s.rdb, asynq.Config{
		Concurrency:              concurrency,
		Queues:                   s.queues,
		TaskCheckInterval:        taskCheck,
		DelayedTaskCheckInterval: o.DelayedTaskCheckInterval,
		ShutdownTimeout:          o.ShutdownTimeout,
		HealthCheckInterval:      o.HealthCheckInterval,
		JanitorInterval:          o.JanitorInterval,
		RetryDelayFunc:           s.retryDelay,
		IsFailure:                s.isFailure,
		ErrorHandler:             asynq.ErrorHandlerFunc(s.handleError),
		HealthCheckFunc:          s.healthCheck,
		Logger:                   logging.AsynqLogger(s.log),
		LogLevel:                 level,
	})
}

// Shutdown stops the periodic scheduler and the repair loop, stops taking
// tasks, and waits up to ShutdownTimeout for running ones; those still
// running then go back to pending without using up a retry. It is safe to
// call more than once.
func (s *Server) Shutdown() {
	s.mu.Lock()
	switch s.state {
	case stateRunning:
	case stateStopping:
		s.mu.Unlock()
		<-s.stopped
		return
	default:
		s.mu.Unlock()
		return
	}
	s.state = stateStopping
	s.stopping.Store(true)
	s.mu.Unlock()

	s.log.Info("worker shutting down", slog.Duration("timeout", s.opts.ShutdownTimeout))
	if s.periodic != nil {
		s.periodic.shutdown()
	}
	s.repair.shutdown()
	if s.wake != nil {
		s.wake.shutdown()
	} else {
		s.srv.Shutdown()
	}
	s.bg.Wait()
	s.awaitHandlers()

	s.mu.Lock()
	s.state = stateStopped
	close(s.stopped)
	s.mu.Unlock()
	s.log.Info("worker stopped")
}

// Run starts the server, blocks until ctx ends, then shuts down (draining
// within ShutdownTimeout).
func (s *Server) Run(ctx context.Context) error {
	if err := s.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	s.Shutdown()
	return nil
}

// Ready reports whether the worker can take tasks: started, not shutting
// down, and Redis answering. It backs /readyz.
func (s *Server) Ready(ctx context.Context) error {
	s.mu.Lock()
	st := s.state
	s.mu.Unlock()
	if st != stateRunning {
		return fmt.Errorf("server: %w (%s)", ErrNotRunning, st)
	}
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("server: redis: %w", err)
	}
	return nil
}

// Repair removes, from every queue of this namespace, task IDs whose task
// hash is gone (see rdb.RepairQueue), and returns how many. The repair loop
// calls it at start and every RepairInterval; operators may call it any
// time.
func (s *Server) Repair(ctx context.Context) (int, error) {
	queues := maps.Clone(s.queues)
	// Queues of this namespace that this worker does not serve break the
	// dashboard all the same.
	known, err := s.rdb.SMembers(ctx, rdb.AllQueues).Result()
	if err != nil {
		return 0, fmt.Errorf("server: repair: list queues: %w", err)
	}
	for _, q := range known {
		if strings.HasPrefix(q, s.opts.Namespace+":") {
			queues[q] = 0
		}
	}
	total := 0
	for _, q := range slices.Sorted(maps.Keys(queues)) {
		n, err := rdb.RepairQueue(ctx, s.rdb, q, 500)
		total += n
		if err != nil {
			return total, fmt.Errorf("server: %w", err)
		}
	}
	return total, nil
}

// logicalQueue strips the namespace from an asynq queue name (metric and
// log labels stay the same across deployments).
func (s *Server) logicalQueue(q string) string {
	if l, ok := strings.CutPrefix(q, s.opts.Namespace+":"); ok {
		return l
	}
	return q
}

func (s *Server) queueNames() []string { return slices.Sorted(maps.Keys(s.queues)) }

func (s *Server) healthCheck(err error) {
	if err != nil {
		s.log.Warn("redis health check failed", slog.String("error", err.Error()))
	}
}

// HandlerGrace is how long Shutdown waits, after asynq has stopped, for
// handlers it gave up on at SHUTDOWN_TIMEOUT (their tasks are back in the
// queue and their contexts cancelled) to return: time to log their
// outcome line and record where they stopped (an export's row) before the
// process exits.
const HandlerGrace = 500 * time.Millisecond

func (s *Server) awaitHandlers() {
	done := make(chan struct{})
	go func() {
		s.inflight.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(HandlerGrace):
		s.log.Warn("handlers still running at exit; their tasks are back in the queue")
	}
}
