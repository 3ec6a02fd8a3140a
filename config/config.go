// Package config reads plyrtasks' configuration from environment variables
// (caarlos0/env v10). Every variable has a documented default; a bad or
// out-of-range value stops start-up with a message naming the variable and
// its allowed range, and all such problems are reported at once.
//
// Each variable is documented on its field below in the form the README's
// configuration table is generated from (Variables, MarkdownTable): the
// comment names the variable and ends with "Default: …".
package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caarlos0/env/v10"
	"github.com/hibiken/asynq"
	"github.com/plyr-fm/plyrtasks/redisconn"
)

// Config is the whole configuration. Families of task types keep their
// settings in their own file and struct (atproto.go, storage.go,
// moderation.go); their variables are read the same way (env tags, no
// prefix), and a family struct with a Validate() error (or
// Validate(dataDir string) error) method is validated with the rest.
//
// Fields tagged secret:"true" (and any variable whose name says PASSWORD,
// TOKEN, SECRET or KEY) are never printed: Redacted shows them as set/unset.
type Config struct {
	// REDIS_URL: the Redis that holds the queues. Forms: redis://,
	// rediss:// (TLS), redis-sentinel://[user:pass@]s1,s2/db?master=NAME
	// (userinfo is the primary's; Sentinel credentials go in
	// sentinel_username/sentinel_password), redis-cluster://n1,n2. Options
	// dial_timeout, read_timeout, write_timeout, pool_size. Point production
	// at a Redis with AOF and maxmemory-policy noeviction.
	// Default: unset, which starts an embedded in-memory Redis on a
	// loopback port — nothing survives a restart.
	RedisURL string `env:"REDIS_URL" secret:"url"`

	// TASKS_NAMESPACE: prefix of every queue name (plyr:critical), so two
	// deployments can share one Redis without taking each other's tasks,
	// strikes or wake signals. It does not fence the dashboard (asynqmon
	// shows and controls every queue on the Redis) nor the store: give each
	// deployment its own DATABASE_URL. Allowed: 1 to 32 of a-z, 0-9, _ and
	// -. Default: plyr.
	Namespace string `env:"TASKS_NAMESPACE" envDefault:"plyr"`

	// WORKER_CONCURRENCY: tasks one worker process runs at once.
	// Allowed: 1..1000. Default: 10.
	WorkerConcurrency int `env:"WORKER_CONCURRENCY" envDefault:"10"`

	// DATABASE_URL: PostgreSQL for the task store, postgres://user:pass@host:5432/db.
	// Default: unset, which uses an embedded SQLite file under DATA_DIR.
	DatabaseURL string `env:"DATABASE_URL" secret:"url"`

	// DATA_DIR: directory of the embedded SQLite database (created 0700).
	// Default: ./data.
	DataDir string `env:"DATA_DIR" envDefault:"./data"`

	// HTTP_ADDR: listen address of the HTTP API (/v1), the dashboard
	// (/monitoring/), /healthz, /readyz and /metrics. A loopback address
	// keeps everything on this machine; any other address requires
	// API_TOKEN and a dashboard account. Default: 127.0.0.1:8080.
	HTTPAddr string `env:"HTTP_ADDR" envDefault:"127.0.0.1:8080"`

	// API_TOKEN: bearer token for /v1 (Authorization: Bearer …), at least
	// 16 characters (openssl rand -hex 32). When unset, start-up fails on a
	// non-loopback HTTP_ADDR; on a loopback HTTP_ADDR the API is open to
	// loopback callers only (requests from other addresses get 401).
	// Default: unset.
	APIToken string `env:"API_TOKEN" secret:"true"`

	// Dashboard holds the asynqmon accounts.
	Dashboard Dashboard

	// LOG_FORMAT: text (human-readable, coloured on a terminal) or json
	// (one object per line), any case. Default: text.
	LogFormat string `env:"LOG_FORMAT" envDefault:"text"`

	// LOG_LEVEL: debug, info, warn or error, any case. Default: info.
	LogLevel string `env:"LOG_LEVEL" envDefault:"info"`

	// FALLBACK: what a producer does when no Redis is configured or an
	// enqueue fails: inline runs the task in-process (same middleware,
	// bounded by INLINE_CONCURRENCY, drained on shutdown); error returns
	// the enqueue error (any case). Default: inline.
	Fallback string `env:"FALLBACK" envDefault:"inline"`

	// INLINE_CONCURRENCY: tasks the inline fallback runs at once; more
	// wait for a slot. Allowed: 1..256. Default: 4.
	InlineConcurrency int `env:"INLINE_CONCURRENCY" envDefault:"4"`

	// SESSION_ENCRYPTION_KEY: key that encrypts session tokens at rest
	// (AES-256-GCM): base64 of exactly 32 random bytes (openssl rand
	// -base64 32). Never printed. Without it sessions cannot be stored.
	// Default: unset.
	SessionEncryptionKey string `env:"SESSION_ENCRYPTION_KEY" secret:"true"`

	// Timing holds the worker's asynq timing settings.
	Timing Timing
	// Worker holds the worker preset and the woken worker switch
	// (worker.go).
	Worker Worker

	ATProto    ATProto
	Storage    Storage
	Moderation Moderation
}

// Dashboard holds the accounts of the asynqmon dashboard (/monitoring/).
// asynqmon has no authentication of its own; plyrtasks puts HTTP Basic
// authentication in front of it. Without any account the dashboard is open
// to loopback callers only, and a non-loopback HTTP_ADDR fails start-up.
type Dashboard struct {
	// DASHBOARD_USER: admin account of the dashboard (may pause queues,
	// retry, archive and delete tasks); set with DASHBOARD_PASSWORD.
	// Default: unset.
	User string `env:"DASHBOARD_USER"`
	// DASHBOARD_PASSWORD: password of DASHBOARD_USER, at least 8
	// characters. Default: unset.
	Password string `env:"DASHBOARD_PASSWORD" secret:"true"`
	// DASHBOARD_VIEWER_USER: read-only account of the dashboard; set with
	// DASHBOARD_VIEWER_PASSWORD. Default: unset.
	ViewerUser string `env:"DASHBOARD_VIEWER_USER"`
	// DASHBOARD_VIEWER_PASSWORD: password of DASHBOARD_VIEWER_USER, at least
	// 8 characters. Default: unset.
	ViewerPassword string `env:"DASHBOARD_VIEWER_PASSWORD" secret:"true"`
	// DASHBOARD_READ_ONLY: true makes the whole dashboard read-only, for
	// every account. Default: false.
	ReadOnly bool `env:"DASHBOARD_READ_ONLY" envDefault:"false"`
}

// Timing holds the asynq worker timing settings. Every range below was
// chosen by reading asynq v0.26.0 (server.go, processor.go, forwarder.go,
// heartbeat.go, janitor.go, healthcheck.go), and excludes two kinds of value
// that break asynq silently:
//
//   - zero and negative values: asynq replaces 0 with its own default
//     without a word (so "0" never means "as fast as possible"); a negative
//     delayed-task, janitor or health-check interval reaches a time.Timer
//     as is and spins that loop against Redis, and a negative shutdown
//     timeout aborts every running task the moment a stop begins;
//   - values so large that work waits without anyone noticing. plyr.fm's
//     2025-12-30 incident was this kind: after one timing change, one-off
//     tasks silently stopped while periodic tasks kept running. In asynq
//     the same split appears when the delayed-task check is slow: tasks
//     with ProcessIn/ProcessAt and retries wait in Redis for the forwarder,
//     while periodic tasks go straight to the pending list.
//
// asynq's heartbeat (5 s) and task lease (30 s) are fixed in v0.26.0: no
// setting here can make leases expire under running tasks.
type Timing struct {
	// TASK_CHECK_INTERVAL: how long an idle worker waits before polling
	// empty queues again. asynq sleeps a random interval/2..3·interval/2
	// after each empty poll, uninterruptibly, so a task enqueued into idle
	// queues waits up to 1.5× this before it starts, and a graceful stop
	// waits for the sleep before SHUTDOWN_TIMEOUT starts counting. Each
	// poll is one Redis script per queue (3 queues). With WORKER_WAKE it
	// is instead how often an idle worker runs its one-script check (for
	// tasks no producer signalled); signalled tasks start within
	// milliseconds. WORKER_PRESET sets its default. Allowed: 10ms..5s.
	// Default: 1s.
	TaskCheckInterval time.Duration `env:"TASK_CHECK_INTERVAL" envDefault:"1s"`

	// DELAYED_TASK_CHECK_INTERVAL: how often scheduled tasks (ProcessIn,
	// ProcessAt) and retries that are due move to their queue. It is how
	// late such a task may start; each check is two Redis scripts per
	// queue. asynq stores due times in whole seconds, so below 1s this only
	// shortens the wait. Allowed: 100ms..10s. Default: 5s.
	DelayedTaskCheckInterval time.Duration `env:"DELAYED_TASK_CHECK_INTERVAL" envDefault:"5s"`

	// SHUTDOWN_TIMEOUT: on SIGTERM, how long running tasks may go on before
	// they are put back in their queue (without using up a retry). The whole
	// stop takes up to SHUTDOWN_TIMEOUT + 1.5 × TASK_CHECK_INTERVAL + 0.5s
	// (see Timing.MaxDrain), at most 28s within the allowed ranges, so a 30s
	// kill grace (Kubernetes' default; set stop_grace_period: 30s in
	// compose, docker stop -t 30) never kills a worker mid-drain.
	// Allowed: 1s..20s. Default: 20s.
	ShutdownTimeout time.Duration `env:"SHUTDOWN_TIMEOUT" envDefault:"20s"`

	// HEALTH_CHECK_INTERVAL: how often the worker pings Redis to report its
	// health (/readyz); a Redis outage shows within this time. Allowed:
	// 1s..1m. Default: 15s.
	HealthCheckInterval time.Duration `env:"HEALTH_CHECK_INTERVAL" envDefault:"15s"`

	// JANITOR_INTERVAL: how often completed tasks past their retention are
	// deleted. asynq deletes at most 100 per queue per run, so this caps
	// clean-up at 100/interval tasks per queue: longer intervals let a busy
	// queue's completed set grow without bound. Allowed: 1s..30s.
	// Default: 8s.
	JanitorInterval time.Duration `env:"JANITOR_INTERVAL" envDefault:"8s"`
}

// Allowed ranges of the timing settings (see Timing for the reasons).
const (
	MinTaskCheckInterval        = 10 * time.Millisecond
	MaxTaskCheckInterval        = 5 * time.Second
	MinDelayedTaskCheckInterval = 100 * time.Millisecond
	MaxDelayedTaskCheckInterval = 10 * time.Second
	MinShutdownTimeout          = 1 * time.Second
	MaxShutdownTimeout          = 20 * time.Second
	MinHealthCheckInterval      = 1 * time.Second
	MaxHealthCheckInterval      = 60 * time.Second
	MinJanitorInterval          = 1 * time.Second
	MaxJanitorInterval          = 30 * time.Second
)

// Allowed ranges of the other numeric settings.
const (
	MinWorkerConcurrency = 1
	MaxWorkerConcurrency = 1000
	MinInlineConcurrency = 1
	MaxInlineConcurrency = 256
)

// Values of LOG_FORMAT, LOG_LEVEL and FALLBACK.
const (
	LogFormatText  = "text"
	LogFormatJSON  = "json"
	FallbackInline = "inline"
	FallbackError  = "error"
)

// Range is an inclusive range of durations.
type Range struct{ Min, Max time.Duration }

// String formats the range as in error messages: 10ms..5s.
func (r Range) String() string { return short(r.Min) + ".." + short(r.Max) }

// short formats a duration without zero tails: 1m rather than 1m0s.
func short(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// TimingRanges returns the allowed range of every timing setting, by
// variable name (a new map each call). Tests run the worker at every
// minimum and maximum.
func TimingRanges() map[string]Range {
	return map[string]Range{
		"TASK_CHECK_INTERVAL":         {MinTaskCheckInterval, MaxTaskCheckInterval},
		"DELAYED_TASK_CHECK_INTERVAL": {MinDelayedTaskCheckInterval, MaxDelayedTaskCheckInterval},
		"SHUTDOWN_TIMEOUT":            {MinShutdownTimeout, MaxShutdownTimeout},
		"HEALTH_CHECK_INTERVAL":       {MinHealthCheckInterval, MaxHealthCheckInterval},
		"JANITOR_INTERVAL":            {MinJanitorInterval, MaxJanitorInterval},
	}
}

// byName returns the timing setting named by its variable.
func (t *Timing) byName() map[string]*time.Duration {
	return map[string]*time.Duration{
		"TASK_CHECK_INTERVAL":         &t.TaskCheckInterval,
		"DELAYED_TASK_CHECK_INTERVAL": &t.DelayedTaskCheckInterval,
		"SHUTDOWN_TIMEOUT":            &t.ShutdownTimeout,
		"HEALTH_CHECK_INTERVAL":       &t.HealthCheckInterval,
		"JANITOR_INTERVAL":            &t.JanitorInterval,
	}
}

// Apply copies the timing settings into an asynq server config. Use it
// rather than copying fields one by one: a setting left out would silently
// fall back to asynq's own default.
func (t Timing) Apply(cfg *asynq.Config) {
	cfg.TaskCheckInterval = t.TaskCheckInterval
	cfg.DelayedTaskCheckInterval = t.DelayedTaskCheckInterval
	cfg.ShutdownTimeout = t.ShutdownTimeout
	cfg.HealthCheckInterval = t.HealthCheckInterval
	cfg.JanitorInterval = t.JanitorInterval
}

// MaxDrain is the longest a graceful worker stop can take: asynq first
// finishes the processor's idle sleep (up to 1.5 × TaskCheckInterval), then
// gives running tasks ShutdownTimeout, and handlers it gave up on get
// server.HandlerGrace (0.5s) to record where they stopped. A container's
// kill grace period must exceed it.
func (t Timing) MaxDrain() time.Duration {
	return t.ShutdownTimeout + t.TaskCheckInterval*3/2 + handlerGrace
}

// handlerGrace is server.HandlerGrace (config does not import server; a
// server test checks they agree).
const handlerGrace = 500 * time.Millisecond

// Load reads the configuration from the process environment and validates
// it. The error lists every bad variable.
func Load() (*Config, error) { return LoadEnv(env.ToMap(os.Environ())) }

// LoadEnv reads the configuration from environ (variable → value) instead
// of the process environment, and validates it.
func LoadEnv(environ map[string]string) (*Config, error) {
	var c Config
	var errs []error
	failed := map[string]bool{}
	if err := env.ParseWithOptions(&c, env.Options{Environment: environ}); err != nil {
		vars := describe(reflect.TypeOf(c))
		var agg env.AggregateError
		if errors.As(err, &agg) {
			for _, e := range agg.Errors {
				name, msg := explain(e, vars, environ)
				if name != "" {
					failed[name] = true
				}
				errs = append(errs, errors.New(msg))
			}
		} else {
			errs = append(errs, fmt.Errorf("config: %w", err))
		}
	}
	// Enumerations are case-insensitive: LOG_LEVEL=INFO means info.
	for _, p := range []*string{&c.LogFormat, &c.LogLevel, &c.Fallback} {
		*p = strings.ToLower(strings.TrimSpace(*p))
	}
	c.applyWorkerPreset(environ)
	errs = append(errs, c.validate(failed)...)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return &c, nil
}

// Validate checks every setting and returns all problems at once
// (errors.Join), each naming its variable and what is allowed.
func (c *Config) Validate() error { return errors.Join(c.validate(nil)...) }

var namespaceRE = regexp.MustCompile(`^[a-z0-9_-]{1,32}$`)

// validate checks everything except the variables in skip (which failed to
// parse and were reported already).
func (c *Config) validate(skip map[string]bool) []error {
	var errs []error
	add := func(name string, err error) {
		if err != nil && !skip[name] {
			errs = append(errs, err)
		}
	}

	if c.RedisURL != "" {
		_, err := redisconn.Parse(c.RedisURL)
		add("REDIS_URL", err)
	}
	if !namespaceRE.MatchString(c.Namespace) {
		add("TASKS_NAMESPACE", fmt.Errorf("TASKS_NAMESPACE=%q is not allowed: want 1 to 32 of a-z, 0-9, _ and -", c.Namespace))
	}
	add("WORKER_CONCURRENCY", intRange("WORKER_CONCURRENCY", c.WorkerConcurrency, MinWorkerConcurrency, MaxWorkerConcurrency))
	add("INLINE_CONCURRENCY", intRange("INLINE_CONCURRENCY", c.InlineConcurrency, MinInlineConcurrency, MaxInlineConcurrency))
	add("DATABASE_URL", checkDatabaseURL(c.DatabaseURL))
	if strings.TrimSpace(c.DataDir) == "" {
		add("DATA_DIR", errors.New("DATA_DIR is blank: want a directory path"))
	}
	add("LOG_FORMAT", oneOf("LOG_FORMAT", c.LogFormat, LogFormatText, LogFormatJSON))
	add("LOG_LEVEL", oneOf("LOG_LEVEL", c.LogLevel, "debug", "info", "warn", "error"))
	add("FALLBACK", oneOf("FALLBACK", c.Fallback, FallbackInline, FallbackError))
	add("SESSION_ENCRYPTION_KEY", checkKey(c.SessionEncryptionKey))

	ranges := TimingRanges()
	timings := c.Timing.byName()
	for _, name := range slices.Sorted(maps.Keys(timings)) {
		d, r := timings[name], ranges[name]
		if *d < r.Min || *d > r.Max {
			add(name, fmt.Errorf("%s=%s is out of range: allowed %s", name, short(*d), r))
		}
	}

	loopback, err := c.HTTPLoopback()
	add("HTTP_ADDR", err)
	if c.APIToken != "" && len(c.APIToken) < 16 {
		add("API_TOKEN", fmt.Errorf("API_TOKEN is too short (%d characters): want at least 16 (openssl rand -hex 32)", len(c.APIToken)))
	}
	d := c.Dashboard
	add("DASHBOARD_USER", pair("DASHBOARD_USER", d.User, "DASHBOARD_PASSWORD", d.Password))
	add("DASHBOARD_VIEWER_USER", pair("DASHBOARD_VIEWER_USER", d.ViewerUser, "DASHBOARD_VIEWER_PASSWORD", d.ViewerPassword))
	if d.User != "" && d.User == d.ViewerUser {
		add("DASHBOARD_VIEWER_USER", fmt.Errorf("DASHBOARD_VIEWER_USER=%q is also DASHBOARD_USER: the admin and the read-only account need different names", d.User))
	}
	if err == nil && !loopback {
		if c.APIToken == "" {
			add("API_TOKEN", fmt.Errorf("API_TOKEN is required: HTTP_ADDR=%s is not a loopback address, and the API must not be open to the network", c.HTTPAddr))
		}
		if d.User == "" && d.ViewerUser == "" {
			add("DASHBOARD_USER", fmt.Errorf("DASHBOARD_USER and DASHBOARD_PASSWORD (or DASHBOARD_VIEWER_USER and DASHBOARD_VIEWER_PASSWORD) are required: HTTP_ADDR=%s is not a loopback address, and the dashboard must not be open to the network", c.HTTPAddr))
		}
	}

	// The families' own checks. Asserted rather than called directly so
	// that a family's Validate may take what it needs (Storage resolves its
	// default location from DATA_DIR).
	for _, fam := range []any{&c.ATProto, &c.Storage, &c.Moderation, &c.Worker} {
		var err error
		switch v := fam.(type) {
		case interface{ Validate() error }:
			err = v.Validate()
		case interface{ Validate(dataDir string) error }:
			err = v.Validate(c.DataDir)
		}
		errs = append(errs, dropFailed(err, skip)...)
	}
	return errs
}

// dropFailed splits a family's (joined) error and drops what it says of a
// variable that did not even parse: "not an integer" is the news, a range
// error about the zero value left behind is noise.
func dropFailed(err error, skip map[string]bool) []error {
	if err == nil {
		return nil
	}
	all := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		all = j.Unwrap()
	}
	var out []error
	for _, e := range all {
		msg := e.Error()
		name := msg
		if i := strings.IndexAny(msg, "=: "); i >= 0 {
			name = msg[:i]
		}
		if !skip[name] {
			out = append(out, e)
		}
	}
	return out
}

func intRange(name string, v, lo, hi int) error {
	if v < lo || v > hi {
		return fmt.Errorf("%s=%d is out of range: allowed %d..%d", name, v, lo, hi)
	}
	return nil
}

func oneOf(name, v string, allowed ...string) error {
	if slices.Contains(allowed, v) {
		return nil
	}
	want := strings.Join(allowed[:len(allowed)-1], ", ") + " or " + allowed[len(allowed)-1]
	return fmt.Errorf("%s=%q is not allowed: want %s", name, v, want)
}

// pair checks that an account has both a name and a password, and that the
// password is not trivially short. It never prints the password.
func pair(userVar, user, passVar, pass string) error {
	switch {
	case user == "" && pass == "":
		return nil
	case user == "":
		return fmt.Errorf("%s is set but %s is not: set both or neither", passVar, userVar)
	case pass == "":
		return fmt.Errorf("%s is set but %s is not: set both or neither", userVar, passVar)
	case len(pass) < 8:
		return fmt.Errorf("%s is too short (%d characters): want at least 8", passVar, len(pass))
	}
	return nil
}

func checkDatabaseURL(raw string) error {
	if raw == "" {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error repeats the URL, password included: say less.
		return errors.New("DATABASE_URL is not a valid URL: want postgres://user:pass@host:5432/db")
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return fmt.Errorf("DATABASE_URL has scheme %q: want postgres://user:pass@host:5432/db (unset DATABASE_URL for the embedded SQLite)", u.Scheme)
	}
	if u.Host == "" {
		return errors.New("DATABASE_URL has no host: want postgres://user:pass@host:5432/db")
	}
	return nil
}

// checkKey mirrors store.ParseKey (which the store applies when it opens):
// base64 (standard or URL-safe, padded or not) of exactly 32 bytes.
func checkKey(s string) error {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if key, err := enc.DecodeString(s); err == nil {
			if len(key) != 32 {
				return fmt.Errorf("SESSION_ENCRYPTION_KEY decodes to %d bytes: want base64 of exactly 32 random bytes (openssl rand -base64 32)", len(key))
			}
			return nil
		}
	}
	return errors.New("SESSION_ENCRYPTION_KEY is not base64: want base64 of 32 random bytes (openssl rand -base64 32)")
}

// HTTPLoopback reports whether HTTP_ADDR binds a loopback address only
// (127.0.0.0/8, ::1 or localhost). An empty host (":8080") binds every
// interface and is not loopback.
func (c *Config) HTTPLoopback() (bool, error) {
	host, port, err := net.SplitHostPort(c.HTTPAddr)
	if err != nil {
		return false, fmt.Errorf("HTTP_ADDR=%q is not host:port (e.g. 127.0.0.1:8080 or 0.0.0.0:8080)", c.HTTPAddr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return false, fmt.Errorf("HTTP_ADDR=%q has a bad port: want 0..65535", c.HTTPAddr)
	}
	if host == "localhost" {
		return true, nil
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback(), nil
}

// EmbeddedRedis reports whether REDIS_URL is unset, so the process runs
// the embedded in-memory Redis (redisconn.Embedded).
func (c *Config) EmbeddedRedis() bool { return c.RedisURL == "" }

// RedisSpec parses REDIS_URL. It fails with redisconn.ErrEmpty when
// REDIS_URL is unset (see EmbeddedRedis).
func (c *Config) RedisSpec() (redisconn.Spec, error) { return redisconn.Parse(c.RedisURL) }

// EmbeddedDatabase reports whether DATABASE_URL is unset, so the store is
// the embedded SQLite file under DATA_DIR.
func (c *Config) EmbeddedDatabase() bool { return strings.TrimSpace(c.DatabaseURL) == "" }
