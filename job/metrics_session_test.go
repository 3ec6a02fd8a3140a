package job_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/plyr-fm/plyrtasks/job"
	"github.com/plyr-fm/plyrtasks/tasks"
)

// expiredErr is how package pds reports a dead session: a typed error
// wrapping ErrSessionExpired inside Permanent.
type expiredErr struct{ reason string }

func (e *expiredErr) Error() string { return "session expired: " + e.reason }
func (e *expiredErr) Unwrap() error { return job.ErrSessionExpired }

// A run that fails because the user's session expired or was revoked is
// counted in plyrtasks_sessions_expired_total{kind}, through the worker's
// chain (DefaultMiddleware) and Metrics.Middleware alike; other failures,
// successes and cancellations are not.
func TestMetricsCountExpiredSessions(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	chains := []struct {
		name string
		mw   func(m *job.Metrics) []job.Middleware
	}{
		{"DefaultMiddleware", func(m *job.Metrics) []job.Middleware { return job.DefaultMiddleware(quiet, m) }},
		{"Metrics.Middleware", func(m *job.Metrics) []job.Middleware { return []job.Middleware{m.Middleware()} }},
	}
	runs := []struct {
		kind string
		err  error
	}{
		{"teal:scrobble", job.Permanent(&expiredErr{"refresh token revoked"})},
		{"teal:scrobble", job.Permanent(fmt.Errorf("load session: %w", job.ErrSessionExpired))},
		{"teal:scrobble", job.Permanent(errors.New("record rejected: 400"))},
		{"teal:scrobble", errors.New("PDS 502")},
		{"teal:scrobble", nil},
		{"pds:like", job.Permanent(&expiredErr{"no such session"})},
		{"pds:like", context.Canceled},
		{"not:declared", job.Permanent(job.ErrSessionExpired)},
	}
	want := map[string]float64{"teal:scrobble": 2, "pds:like": 1, job.UnknownKind: 1, "copyright:scan": 0}

	for _, c := range chains {
		t.Run(c.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			m := job.NewMetrics(reg)
			for _, r := range runs {
				h := job.Chain(func(context.Context, *job.Task) error { return r.err }, c.mw(m)...)
				_ = h(context.Background(), &job.Task{Kind: r.kind, MaxRetry: 3})
			}
			for kind, n := range want {
				if got := gatherValue(t, reg, "plyrtasks_sessions_expired_total", []string{kind}); got != n {
					t.Errorf("sessions_expired_total{kind=%q} = %v, want %v", kind, got, n)
				}
			}
			// Every declared kind's series exists from the start (alerts on
			// absent series work), and no undeclared kind gets its own.
			if n, want := gatherSeries(t, reg, "plyrtasks_sessions_expired_total"), len(tasks.All().Kinds())+1; n != want {
				t.Errorf("%d sessions_expired series, want %d (catalog + unknown)", n, want)
			}
			// The expired runs are archived failures too.
			if got := gatherValue(t, reg, "plyrtasks_tasks_archived_total", []string{"teal:scrobble"}); got != 3 {
				t.Errorf("tasks_archived_total{teal:scrobble} = %v, want 3", got)
			}
		})
	}
}
