package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/plyr-fm/plyrtasks/api"
	"github.com/plyr-fm/plyrtasks/client"
	"github.com/plyr-fm/plyrtasks/config"
	"github.com/plyr-fm/plyrtasks/control"
	"github.com/plyr-fm/plyrtasks/logging"
	"github.com/plyr-fm/plyrtasks/strikes"
	"github.com/plyr-fm/plyrtasks/tasks"
)

// envAPIURL names the API a CLI talks to when --api is not given.
const envAPIURL = "PLYRTASKS_API_URL"

// target is where enqueue, status and cancel send their requests: a
// running plyrtasks through its HTTP API, or Redis directly.
type target interface {
	Enqueue(ctx context.Context, kind string, payload []byte, opts tasks.Opts) (*api.EnqueueResponse, error)
	Get(ctx context.Context, id string) (*api.TaskStatus, error)
	Cancel(ctx context.Context, id string) (*api.CancelResult, error)
	Close() error
	String() string
}

// targetFlags are the flags every task command shares.
type targetFlags struct {
	apiURL string
	direct bool
	token  string
}

// choice is the outcome of the rule that picks a target.
type choice struct {
	direct bool
	apiURL string // when !direct
}

// chooseTarget applies the documented rule:
//
//  1. --api URL: that HTTP API;
//  2. --direct: the Redis at REDIS_URL (an error when it is unset);
//  3. REDIS_URL set: that Redis;
//  4. otherwise the HTTP API at $PLYRTASKS_API_URL, else at HTTP_ADDR
//     (an unspecified host, as in ":8080", means 127.0.0.1).
func chooseTarget(f targetFlags, cfg *config.Config, getenv func(string) string) (choice, error) {
	switch {
	case f.apiURL != "" && f.direct:
		return choice{}, errors.New("--api and --direct exclude each other")
	case f.apiURL != "":
		return choice{apiURL: f.apiURL}, nil
	case f.direct && cfg.EmbeddedRedis():
		return choice{}, errors.New("--direct needs REDIS_URL (the embedded Redis of `plyrtasks serve` is reached through its HTTP API: drop --direct)")
	case f.direct, !cfg.EmbeddedRedis():
		return choice{direct: true}, nil
	}
	if u := getenv(envAPIURL); u != "" {
		return choice{apiURL: u}, nil
	}
	return choice{apiURL: "http://" + dialAddr(cfg.HTTPAddr)}, nil
}

// dialAddr turns a listen address into one to connect to: an unspecified
// host (":8080", "0.0.0.0:8080", "[::]:8080") becomes 127.0.0.1.
func dialAddr(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// resolved is where a CLI command's requests go (see targetHelp): the
// HTTP API at apiURL with token, or Redis (direct) from cfg.
type resolved struct {
	cfg    *config.Config
	direct bool
	apiURL string // without a trailing slash
	token  string
}

// resolveTarget loads the configuration and decides where the requests go.
func resolveTarget(f targetFlags) (resolved, error) {
	cfg, err := config.Load()
	if err != nil {
		return resolved{}, fmt.Errorf("configuration:\n%w", err)
	}
	ch, err := chooseTarget(f, cfg, os.Getenv)
	if err != nil {
		return resolved{}, err
	}
	tok := f.token
	if tok == "" {
		tok = cfg.APIToken
	}
	return resolved{cfg: cfg, direct: ch.direct, apiURL: strings.TrimSuffix(ch.apiURL, "/"), token: tok}, nil
}

// openTarget loads the configuration and opens the chosen target.
func openTarget(f targetFlags) (target, error) {
	r, err := resolveTarget(f)
	if err != nil {
		return nil, err
	}
	cfg := r.cfg
	if !r.direct {
		return &remoteTarget{Remote: api.Remote{BaseURL: r.apiURL, Token: r.token, HTTP: &http.Client{Timeout: 30 * time.Second}}}, nil
	}
	spec, err := cfg.RedisSpec()
	if err != nil {
		return nil, err
	}
	rdb := spec.Client()
	// Strikes hold here as in serve: a struck enqueue is refused.
	strk := strikes.NewWatcher(rdb, strikes.Options{Namespace: cfg.Namespace, Logger: logging.Discard()})
	_ = strk.Start(context.Background()) // never fails on Redis trouble
	// The CLI never runs a task itself: without Redis it fails.
	c := client.New(rdb, client.Options{
		Namespace: cfg.Namespace, Fallback: client.FallbackError, Logger: logging.Discard(),
		EnqueueMiddleware: []client.EnqueueMiddleware{
			strk.EnqueueMiddleware(),
			// Woken workers (WORKER_WAKE) start on this enqueue at once.
			client.WakeWorkers(rdb, cfg.Namespace, 0),
		},
	})
	return &directTarget{
		rdb: rdb, c: c, strikes: strk, ns: cfg.Namespace, desc: spec.String(),
		enq:   api.ClientEnqueuer(c, cfg.Namespace),
		tasks: api.NewTasks(rdb, cfg.Namespace),
	}, nil
}

type remoteTarget struct{ api.Remote }

func (r *remoteTarget) Close() error   { return nil }
func (r *remoteTarget) String() string { return "HTTP API at " + r.BaseURL }

type directTarget struct {
	rdb     redis.UniversalClient
	c       *client.Client
	strikes *strikes.Watcher
	ns      string
	desc    string
	enq     api.Enqueuer
	tasks   *api.Tasks
}

func (d *directTarget) String() string { return "Redis at " + d.desc }

func (d *directTarget) Enqueue(ctx context.Context, kind string, payload []byte, opts tasks.Opts) (*api.EnqueueResponse, error) {
	res, err := d.enq.Enqueue(ctx, kind, payload, opts)
	if err != nil {
		return nil, err
	}
	if res.Outcome == api.OutcomeDuplicate {
		return nil, &api.Error{Status: http.StatusConflict, Message: "duplicate: a task with the same unique key is already queued or running", ID: res.ID}
	}
	return &api.EnqueueResponse{ID: res.ID, Type: kind, Queue: res.Queue, State: res.State, Outcome: string(res.Outcome), Error: res.Error}, nil
}

func (d *directTarget) Get(ctx context.Context, id string) (*api.TaskStatus, error) {
	st, err := d.tasks.Get(ctx, id)
	if errors.Is(err, api.ErrTaskNotFound) {
		return nil, &api.Error{Status: http.StatusNotFound, Message: err.Error()}
	}
	return st, err
}

// Cancel goes through the task controls (package control), as the API's
// DELETE /v1/tasks/{id} does: a running task is stopped and archived, not
// retried.
func (d *directTarget) Cancel(ctx context.Context, id string) (*api.CancelResult, error) {
	r, err := control.New(d.rdb, control.Options{Namespace: d.ns, Logger: logging.Discard()}).Cancel(ctx, id)
	switch {
	case errors.Is(err, control.ErrNotFound):
		return nil, &api.Error{Status: http.StatusNotFound, Message: err.Error()}
	case errors.Is(err, control.ErrConflict):
		return nil, &api.Error{Status: http.StatusConflict, Message: err.Error()}
	case err != nil:
		return nil, err
	}
	return r, nil
}

func (d *directTarget) Close() error {
	_ = d.c.Close(context.Background())
	d.strikes.Shutdown()
	return d.rdb.Close()
}
