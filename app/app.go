// Package app wires plyrtasks together in one place: Redis (configured or
// embedded), the store, the task registry and its handlers, metrics,
// tracing, strikes, the producer client, the worker, and the HTTP surface
// (API with the task controls, dashboard, health, metrics). cmd/plyrtasks
// calls New and then Serve or Worker.
package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"

	"github.com/plyr-fm/plyrtasks/api"
	"github.com/plyr-fm/plyrtasks/client"
	"github.com/plyr-fm/plyrtasks/config"
	"github.com/plyr-fm/plyrtasks/control"
	"github.com/plyr-fm/plyrtasks/export"
	"github.com/plyr-fm/plyrtasks/handlers"
	"github.com/plyr-fm/plyrtasks/job"
	"github.com/plyr-fm/plyrtasks/monitor"
	"github.com/plyr-fm/plyrtasks/redisconn"
	"github.com/plyr-fm/plyrtasks/server"
	"github.com/plyr-fm/plyrtasks/storage"
	"github.com/plyr-fm/plyrtasks/store"
	"github.com/plyr-fm/plyrtasks/strikes"
	"github.com/plyr-fm/plyrtasks/tasks"
	"github.com/plyr-fm/plyrtasks/tracing"
)

// HTTP server timeouts. WriteTimeout stays 0: the export event stream
// (Server-Sent Events) is long-lived.
const (
	readHeaderTimeout = 10 * time.Second
	idleTimeout       = 2 * time.Minute
	// httpDrainTimeout bounds how long Serve waits for in-flight HTTP
	// requests after it stops accepting new ones.
	httpDrainTimeout = 10 * time.Second
	// streamGrace is how long in-flight requests run undisturbed at
	// shutdown before long-lived ones (event streams) are cancelled.
	streamGrace = 2 * time.Second
)

// App is one plyrtasks process: everything New built, ready to Serve (API,
// worker, dashboard) or run a Worker.
type App struct {
	cfg *config.Config
	log *slog.Logger

	embedded *redisconn.EmbeddedServer // nil when REDIS_URL is set
	rdb      redis.UniversalClient
	store    store.Store
	storage  storage.Storage
	reg      *job.Registry
	metrics  *prometheus.Registry
	jobs     *job.Metrics
	client   *client.Client
	worker   *server.Server
	insp     *asynq.Inspector
	exports  *export.Service
	strikes  *strikes.Watcher
	control  *control.Controller
	tracer   trace.TracerProvider
	// stopTracing flushes and stops the span exporter (a no-op when
	// tracing is off).
	stopTracing func(context.Context) error

	mu       sync.Mutex
	addr     net.Addr
	listened chan struct{}
	closed   bool
}

// New builds every component from cfg. It starts the embedded Redis when
// REDIS_URL is unset (with a loud warning: nothing is durable), opens and
// migrates the store, and registers every handler; it does not start the
// worker or listen: Serve and Worker do. Close releases what New opened
// (Serve and Worker call it on their way out).
func New(ctx context.Context, cfg *config.Config, logger *slog.Logger) (_ *App, err error) {
	if logger == nil {
		logger = slog.Default()
	}
	a := &App{cfg: cfg, log: logger, listened: make(chan struct{})}
	defer func() {
		if err != nil {
			a.Close()
		}
	}()

	if err := a.openRedis(ctx); err != nil {
		return nil, err
	}
	a.insp = asynq.NewInspectorFromRedisClient(a.rdb)
	// asynq lists a queue (in the dashboard too) only once a task was
	// enqueued to it: register ours, so a fresh deployment shows all three.
	if err := a.rdb.SAdd(ctx, asynqQueuesKey, anySlice(a.queueNames())...).Err(); err != nil {
		logger.Warn("could not register the queues with asynq; they appear in the dashboard with their first task", "err", err)
	}

	a.store, err = store.Open(ctx, store.Options{
		DatabaseURL: cfg.DatabaseURL, DataDir: cfg.DataDir,
		EncryptionKey: cfg.SessionEncryptionKey, Logger: logger,
	})
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	if err := a.store.Migrate(ctx); err != nil {
		return nil, fmt.Errorf("store: migrate: %w", err)
	}
	if a.storage, err = storage.FromConfig(ctx, cfg.Storage, cfg.DataDir); err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}

	a.metrics = monitor.NewRegistry()
	a.jobs = job.NewMetrics(a.metrics)
	a.metrics.MustRegister(monitor.NewQueueCollector(monitor.QueueCollectorOptions{
		Inspector: a.insp, Namespace: cfg.Namespace, Queues: a.queueNames(), Logger: logger,
	}))

	a.exports, err = export.New(export.Options{
		Store: a.store, Storage: a.storage,
		// a.client is built below; the export service calls it only once
		// requests arrive.
		Enqueuer: export.EnqueueFunc(a.enqueueExport),
		// The controls' cancel: a queued export's task is deleted (it
		// would otherwise run, only to find its row cancelled), a running
		// one stopped and archived. (a.control is built below; this runs
		// only once requests arrive.)
		CancelTask: func(ctx context.Context, id string) error {
			_, err := a.control.Cancel(ctx, id)
			if errors.Is(err, control.ErrConflict) || errors.Is(err, control.ErrNotFound) {
				return nil // already finished or gone: nothing left to stop
			}
			return err
		},
		// A queued export whose task was deleted (a generic cancel) never
		// runs: this lets its row end cancelled instead of pending forever.
		TaskExists: export.InspectorTaskExists(a.insp, tasks.Namespaced(cfg.Namespace, tasks.QueueBulk)),
		URLExpiry:  cfg.Storage.ExportURLExpiry,
		Logger:     logger,
	})
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	a.stopTracing, a.tracer, err = tracing.Setup(ctx, "plyrtasks", logger)
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	// Strikes: one in-memory copy per process, kept fresh from Redis, read
	// by the worker (struck tasks are archived with the reason when they
	// come up) and the producer (struck enqueues are refused).
	a.strikes = strikes.NewWatcher(a.rdb, strikes.Options{Namespace: cfg.Namespace, Logger: logger})
	if err := a.strikes.Start(ctx); err != nil {
		return nil, fmt.Errorf("strikes: %w", err)
	}
	a.control = control.New(a.rdb, control.Options{
		Namespace: cfg.Namespace, Logger: logger, StrikesChanged: a.strikes.Refresh,
	})

	a.reg = job.NewRegistry(tasks.All())
	// Inside logging, metrics and recovery, so a struck task is logged and
	// counted as struck.
	a.reg.Use(a.strikes.Middleware())
	if err := handlers.Register(a.reg, handlers.Deps{
		Config: cfg, Store: a.store, Redis: a.rdb, Logger: logger,
		Storage: a.storage, Exports: a.exports,
	}); err != nil {
		return nil, fmt.Errorf("handlers: %w", err)
	}

	fallback, err := client.ParseFallbackMode(cfg.Fallback)
	if err != nil {
		return nil, fmt.Errorf("FALLBACK: %w", err)
	}
	a.client = client.New(a.rdb, client.Options{
		Namespace: cfg.Namespace, Fallback: fallback,
		Inline: a.reg, InlineConcurrency: cfg.InlineConcurrency,
		Logger: logger, Metrics: a.jobs,
		Middleware: []job.Middleware{tracing.Middleware(a.tracer)},
		// Tracing first, so a struck enqueue is traced too.
		// Wake last: only a task that really landed in a queue signals the
		// workers (WORKER_WAKE).
		EnqueueMiddleware: []client.EnqueueMiddleware{
			tracing.EnqueueMiddleware(a.tracer), a.strikes.EnqueueMiddleware(),
			client.WakeWorkers(a.rdb, cfg.Namespace, 0),
		},
	})
	a.worker = server.New(a.rdb, a.reg, server.Options{
		Namespace:                cfg.Namespace,
		Concurrency:              cfg.WorkerConcurrency,
		TaskCheckInterval:        cfg.Timing.TaskCheckInterval,
		DelayedTaskCheckInterval: cfg.Timing.DelayedTaskCheckInterval,
		ShutdownTimeout:          cfg.Timing.ShutdownTimeout,
		HealthCheckInterval:      cfg.Timing.HealthCheckInterval,
		JanitorInterval:          cfg.Timing.JanitorInterval,
		Logger:                   logger,
		Metrics:                  a.jobs,
		Middleware:               []job.Middleware{tracing.Middleware(a.tracer)},
		Wake: server.Wake{
			Enabled:             cfg.Worker.Wake,
			ActiveCheckInterval: cfg.Worker.WakeActiveCheckInterval,
			Linger:              cfg.Worker.WakeLinger,
		},
	})

	return a, nil
}

// openRedis connects to REDIS_URL, or starts the embedded in-memory Redis.
func (a *App) openRedis(ctx context.Context) error {
	if !a.cfg.EmbeddedRedis() {
		spec, err := a.cfg.RedisSpec()
		if err != nil {
			return err
		}
		a.rdb = spec.Client()
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := a.rdb.Ping(pctx).Err(); err != nil {
			return fmt.Errorf("redis %s: %w", spec, err)
		}
		a.log.Info("redis connected", "redis", spec.String())
		return nil
	}
	e, err := redisconn.Embedded(ctx, "")
	if err != nil {
		return err
	}
	a.embedded = e
	a.rdb = e.Spec().Client()
	a.log.Warn("\n"+
		"!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n"+
		"!!! REDIS_URL is not set: using an EMBEDDED, IN-MEMORY Redis.              !!!\n"+
		"!!! NOTHING IS DURABLE: every queued, scheduled, retrying and finished     !!!\n"+
		"!!! task is LOST when this process stops. Fine for trying plyrtasks out;   !!!\n"+
		"!!! in production set REDIS_URL to a Redis with AOF and noeviction.        !!!\n"+
		"!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!",
		"embedded_redis", e.URL())
	return nil
}

// asynqQueuesKey is the set of queue names asynq's Inspector (and so
// asynqmon) lists (asynq's internal base.AllQueues).
const asynqQueuesKey = "asynq:queues"

func anySlice(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// queueNames are this namespace's asynq queue names, sorted.
func (a *App) queueNames() []string {
	var out []string
	for q := range tasks.QueuePriorities() {
		out = append(out, tasks.Namespaced(a.cfg.Namespace, q))
	}
	slices.Sort(out)
	return out
}

// enqueueExport is the export service's Enqueuer: the task ID is the
// export ID (so Cancel always finds it) and the task is not unique (the job
// row already allows one active export per artist, and a unique lock would
// outlive a cancelled export).
func (a *App) enqueueExport(ctx context.Context, args tasks.MediaExportArgs) (string, error) {
	res, err := a.client.Enqueue(ctx, args, client.UniqueFor(0), client.NoWait())
	if err != nil {
		return "", err
	}
	return res.ID, nil
}

// apiEnqueuer is the HTTP API's: export:media goes through the export
// service, which records the export's job row before it enqueues (one
// active export per artist, GET /v1/exports/{id} answers while it waits for
// a worker), keeping the payload's export_id; every other type goes to the
// producer client. An export's query options (delay, queue…) do not apply:
// the service owns its scheduling.
func (a *App) apiEnqueuer() api.Enqueuer {
	generic := api.ClientEnqueuer(a.client, a.cfg.Namespace)
	exportKind := tasks.MediaExportArgs{}.Kind()
	return api.EnqueuerFunc(func(ctx context.Context, kind string, payload []byte, o tasks.Opts) (api.Enqueued, error) {
		if kind != exportKind {
			return generic.Enqueue(ctx, kind, payload, o)
		}
		var args tasks.MediaExportArgs
		if err := json.Unmarshal(payload, &args); err != nil {
			return api.Enqueued{}, &tasks.FieldError{Field: "(body)", Reason: err.Error()}
		}
		j, created, err := a.exports.RequestID(ctx, args.ExportID, args.ArtistDID)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return api.Enqueued{}, &tasks.FieldError{Field: "artist_did", Reason: "no artist with this DID in the store"}
		case errors.Is(err, export.ErrIDTaken):
			return api.Enqueued{}, &tasks.FieldError{Field: "export_id", Reason: "already names an export that failed or was cancelled, or another artist's: use a new export_id"}
		case errors.Is(err, job.ErrStruck):
			return api.Enqueued{}, err // 423 with the strike's reason
		case errors.Is(err, export.ErrEnqueue):
			return api.Enqueued{}, fmt.Errorf("%w: %w", api.ErrUnavailable, err)
		case err != nil:
			return api.Enqueued{}, err
		}
		out := api.Enqueued{ID: j.TaskID, Kind: kind, Queue: tasks.QueueBulk, State: "pending", Outcome: api.OutcomeEnqueued}
		if out.ID == "" {
			out.ID = j.ID
		}
		if !created {
			out.Outcome = api.OutcomeDuplicate
		}
		return out, nil
	})
}

// Handler is the HTTP surface of `serve`: the API under /v1/ (exports
// included), the dashboard under /monitoring/, /healthz, /readyz and
// /metrics.
func (a *App) Handler() (http.Handler, error) {
	mux := a.opsMux()
	apiH, err := api.New(api.Options{
		Enqueuer: a.apiEnqueuer(),
		Tasks:    api.NewTasks(a.rdb, a.cfg.Namespace),
		Token:    a.cfg.APIToken,
		Exports:  a.exports.HTTPHandler(),
		// Task controls and strikes: list, retry, cancel (DELETE
		// /v1/tasks/{id} included), queues, strikes.
		Routes: a.control.Routes(),
		Logger: a.log,
	})
	if err != nil {
		return nil, err
	}
	mux.Handle("/v1/", apiH)
	d := a.cfg.Dashboard
	dash, err := monitor.NewDashboard(monitor.DashboardOptions{
		Redis:    a.rdb,
		Admin:    monitor.Credentials{User: d.User, Password: d.Password},
		Viewer:   monitor.Credentials{User: d.ViewerUser, Password: d.ViewerPassword},
		ReadOnly: d.ReadOnly,
		Logger:   a.log,
	})
	if err != nil {
		return nil, err
	}
	mux.Handle(dash.RootPath()+"/", dash)
	mux.Handle("GET "+dash.RootPath(), http.RedirectHandler(dash.RootPath()+"/", http.StatusFound))
	mux.Handle("GET /{$}", http.RedirectHandler(dash.RootPath()+"/", http.StatusFound))
	return mux, nil
}

// opsMux serves /healthz, /readyz and /metrics: all `worker` exposes.
func (a *App) opsMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /healthz", monitor.Healthz())
	mux.Handle("GET /readyz", monitor.Readyz(0,
		monitor.RedisCheck(a.rdb),
		monitor.Check{Name: "worker", Func: a.worker.Ready},
	))
	mux.Handle("GET /metrics", monitor.Metrics(a.metrics))
	return mux
}

// Serve runs the HTTP API, the worker and the dashboard until ctx ends,
// then shuts down gracefully (see shutdown) and closes everything.
func (a *App) Serve(ctx context.Context) error {
	h, err := a.Handler()
	if err != nil {
		a.Close()
		return err
	}
	return a.run(ctx, h, true)
}

// Worker runs the worker alone, with /healthz, /readyz and /metrics on
// HTTP_ADDR, until ctx ends. It needs REDIS_URL: nothing could reach an
// embedded Redis to enqueue.
func (a *App) Worker(ctx context.Context) error {
	if a.embedded != nil {
		a.Close()
		return errors.New("plyrtasks worker needs REDIS_URL: with the embedded Redis nothing else can enqueue to this worker; run `plyrtasks serve` to try plyrtasks on one machine")
	}
	return a.run(ctx, a.opsMux(), false)
}

// run serves h and the worker until ctx ends; dashboard says whether h
// includes the dashboard (serve) or only /healthz, /readyz and /metrics.
func (a *App) run(ctx context.Context, h http.Handler, dashboard bool) error {
	defer a.Close()
	ln, err := net.Listen("tcp", a.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("HTTP_ADDR: %w", err)
	}
	a.mu.Lock()
	a.addr = ln.Addr()
	a.mu.Unlock()

	// Request contexts derive from reqCtx, cancelled at shutdown so that
	// long-lived responses (event streams) end and the drain completes.
	reqCtx, cancelReqs := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelReqs()
	hs := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		BaseContext:       func(net.Listener) context.Context { return reqCtx },
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}

	if err := a.worker.Start(ctx); err != nil {
		ln.Close()
		return err
	}
	httpErr := make(chan error, 1)
	go func() { httpErr <- hs.Serve(ln) }()
	if dashboard {
		a.log.Info("plyrtasks listening", "http", "http://"+ln.Addr().String(),
			"dashboard", "http://"+ln.Addr().String()+monitor.DefaultRootPath+"/")
	} else {
		a.log.Info("plyrtasks worker listening (health and metrics only)", "http", "http://"+ln.Addr().String())
	}
	close(a.listened)

	select {
	case <-ctx.Done():
		a.log.Info("shutting down")
	case err = <-httpErr:
		a.log.Error("HTTP server failed", "err", err)
	}
	a.shutdown(hs, cancelReqs)
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("http: %w", err)
	}
	return nil
}

// shutdown stops accepting HTTP requests and waits for in-flight ones,
// drains the worker (running tasks finish within SHUTDOWN_TIMEOUT or go back
// to their queue without using up a retry), then drains the in-process
// fallback runs.
func (a *App) shutdown(hs *http.Server, cancelReqs context.CancelFunc) {
	hctx, cancel := context.WithTimeout(context.Background(), httpDrainTimeout)
	defer cancel()
	drained := make(chan error, 1)
	go func() { drained <- hs.Shutdown(hctx) }()
	var err error
	select {
	case err = <-drained:
	case <-time.After(streamGrace):
		// Ordinary requests are done by now; what is left are streams
		// (export events) that never go idle: end them.
		cancelReqs()
		err = <-drained
	}
	if err != nil {
		a.log.Warn("HTTP drain incomplete", "err", err)
		_ = hs.Close()
	}
	a.worker.Shutdown()
	cctx, cancelClose := context.WithTimeout(context.Background(), a.cfg.Timing.ShutdownTimeout)
	defer cancelClose()
	if err := a.client.Close(cctx); err != nil {
		a.log.Warn("in-process tasks still running at shutdown were cancelled", "err", err)
	}
}

// Addr is the address the HTTP server listens on, once it does (nil before).
func (a *App) Addr() net.Addr {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.addr
}

// Listening is closed once Serve or Worker accepts HTTP requests.
func (a *App) Listening() <-chan struct{} { return a.listened }

// Client is the producer client (for embedding plyrtasks in Go code and tests).
func (a *App) Client() *client.Client { return a.client }

// Close releases what New opened: the store, the Redis client and the
// embedded Redis. Serve and Worker call it; it is safe to call again.
func (a *App) Close() {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return
	}
	a.closed = true
	a.mu.Unlock()
	if a.strikes != nil {
		a.strikes.Shutdown()
	}
	if a.stopTracing != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := a.stopTracing(ctx); err != nil {
			a.log.Warn("tracing: flush at shutdown failed", "err", err)
		}
		cancel()
	}
	if a.store != nil {
		if err := a.store.Close(); err != nil {
			a.log.Warn("store close", "err", err)
		}
	}
	if a.rdb != nil {
		_ = a.rdb.Close()
	}
	if a.embedded != nil {
		_ = a.embedded.Close()
	}
}

// Migrate opens the store and applies its migrations (plyrtasks migrate).
func Migrate(ctx context.Context, cfg *config.Config, logger *slog.Logger) error {
	st, err := store.Open(ctx, store.Options{
		DatabaseURL: cfg.DatabaseURL, DataDir: cfg.DataDir,
		EncryptionKey: cfg.SessionEncryptionKey, Logger: logger,
	})
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	return nil
}
