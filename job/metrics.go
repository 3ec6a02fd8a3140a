package job

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/plyr-fm/plyrtasks/tasks"
)

// Fallback reasons: why a producer ran a task in-process instead of
// queueing it (the reason label of plyrtasks_fallback_total).
const (
	FallbackNoRedis       = "no_redis"       // no Redis is configured
	FallbackEnqueueFailed = "enqueue_failed" // Redis is configured but the enqueue failed
)

// UnknownKind is the kind label of every kind outside the catalog, so a
// caller cannot grow the label set.
const UnknownKind = "unknown"

// Metrics are the per-kind Prometheus collectors of task runs and
// fallbacks. Labels are bounded: kind is a catalog kind or UnknownKind,
// reason one of the Fallback* constants or "other".
//
//	plyrtasks_tasks_processed_total{kind}       runs that finished, whatever the outcome
//	plyrtasks_tasks_failed_total{kind}          runs that returned an error (retry, archived, failed)
//	plyrtasks_tasks_retried_total{kind}         failed runs that will run again
//	plyrtasks_tasks_archived_total{kind}        failed runs that were archived (no retry left, or permanent)
//	plyrtasks_fallback_total{kind,reason}       tasks a producer ran in-process instead of queueing
//	plyrtasks_task_duration_seconds{kind}       run duration histogram
//	plyrtasks_sessions_expired_total{kind}      runs that failed because the user's session
//	                                            expired or was revoked (ErrSessionExpired)
//
// Struck and cancelled runs count as processed only. A nil *Metrics is
// valid and records nothing.
type Metrics struct {
	// byKind holds each bounded kind's series, resolved once: the hot path
	// then costs a map read and atomic adds, no label hashing.
	byKind    map[string]*kindSeries
	processed *prometheus.CounterVec
	failed    *prometheus.CounterVec
	retried   *prometheus.CounterVec
	archived  *prometheus.CounterVec
	fallback  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	expired   *prometheus.CounterVec
}

type kindSeries struct {
	processed, failed, retried, archived, expired prometheus.Counter
	duration                                      prometheus.Observer
}

// NewMetrics registers the collectors on reg, with labels bounded by
// tasks.All(). reg nil leaves them unregistered. A second Metrics on the same
// registry reuses the first one's collectors instead of failing.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	return NewMetricsFor(reg, tasks.All())
}

// NewMetricsFor is NewMetrics with labels bounded by catalog.
func NewMetricsFor(reg prometheus.Registerer, catalog *tasks.Catalog) *Metrics {
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "plyrtasks", Name: name, Help: help,
		}, labels))
	}
	m := &Metrics{
		byKind:    map[string]*kindSeries{},
		processed: counter("tasks_processed_total", "Task runs that finished, whatever the outcome.", "kind"),
		failed:    counter("tasks_failed_total", "Task runs that returned an error.", "kind"),
		retried:   counter("tasks_retried_total", "Failed task runs that will run again.", "kind"),
		archived:  counter("tasks_archived_total", "Failed task runs that were archived.", "kind"),
		fallback:  counter("fallback_total", "Tasks a producer ran in-process instead of queueing them.", "kind", "reason"),
		duration: register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "plyrtasks", Name: "task_duration_seconds", Help: "Task run duration.",
			// From a no-op (ms) to a media export (hours).
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 7200},
		}, []string{"kind"})),
		// Work acting as a user that could not run because the user has to
		// log in again: archived, not lost, and counted so it can alert.
		expired: counter("sessions_expired_total", "Task runs that failed because the user's session expired or was revoked.", "kind"),
	}
	// Every series exists from the start at 0, so rate() and absent-series
	// alerts work before the first failure.
	for _, k := range append(catalog.Kinds(), UnknownKind) {
		m.byKind[k] = &kindSeries{
			processed: m.processed.WithLabelValues(k),
			failed:    m.failed.WithLabelValues(k),
			retried:   m.retried.WithLabelValues(k),
			archived:  m.archived.WithLabelValues(k),
			expired:   m.expired.WithLabelValues(k),
			duration:  m.duration.WithLabelValues(k),
		}
		m.fallback.WithLabelValues(k, FallbackNoRedis)
		m.fallback.WithLabelValues(k, FallbackEnqueueFailed)
	}
	return m
}

// register registers c on reg, or returns the collector already registered
// under the same description.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if reg == nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic("job: register metrics: " + err.Error())
	}
	return c
}

// kind bounds a kind label.
func (m *Metrics) kind(k string) string {
	if _, ok := m.byKind[k]; ok {
		return k
	}
	return UnknownKind
}

// Observe records one finished run of kind with its outcome and duration.
func (m *Metrics) Observe(kind, outcome string, d time.Duration) {
	m.observe(kind, outcome, d, nil)
}

// observe is Observe that also classifies the run's error: a session that
// expired or was revoked (ErrSessionExpired) is counted apart.
func (m *Metrics) observe(kind, outcome string, d time.Duration, err error) {
	if m == nil {
		return
	}
	s := m.byKind[kind]
	if s == nil {
		s = m.byKind[UnknownKind]
	}
	s.processed.Inc()
	s.duration.Observe(d.Seconds())
	switch outcome {
	case OutcomeRetry:
		s.failed.Inc()
		s.retried.Inc()
	case OutcomeArchived:
		s.failed.Inc()
		s.archived.Inc()
	case OutcomeFailed:
		s.failed.Inc()
	}
	if err != nil && errors.Is(err, ErrSessionExpired) {
		s.expired.Inc()
	}
}

// Fallback counts one task of kind that a producer ran in-process for
// reason (FallbackNoRedis, FallbackEnqueueFailed; anything else is counted
// as "other").
func (m *Metrics) Fallback(kind, reason string) {
	if m == nil {
		return
	}
	if reason != FallbackNoRedis && reason != FallbackEnqueueFailed {
		reason = "other"
	}
	m.fallback.WithLabelValues(m.kind(kind), reason).Inc()
}

// Middleware observes every run (see Observe). A nil *Metrics returns a
// pass-through middleware.
func (m *Metrics) Middleware() Middleware {
	return func(next HandlerFunc) HandlerFunc {
		if m == nil {
			return next
		}
		return func(ctx context.Context, t *Task) error {
			start := time.Now()
			err := next(ctx, t)
			m.observe(t.Kind, Outcome(ctx, t, err), time.Since(start), err)
			return err
		}
	}
}
