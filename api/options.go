package api

import (
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/plyr-fm/plyrtasks/tasks"
)

// Bounds of the enqueue options. Durations asynq stores in whole seconds
// (timeout, unique_for, retention) must be whole seconds: asynq would
// silently truncate 1.5s to 1s and 500ms to 0 (meaning "none").
const (
	MaxDelay     = 366 * 24 * time.Hour
	MaxTimeout   = 24 * time.Hour
	MaxUniqueFor = 30 * 24 * time.Hour
	MaxRetention = 30 * 24 * time.Hour
	MaxRetries   = 100
	MaxTaskIDLen = 128
)

// QueryParams are the enqueue options POST /v1/tasks/{type} accepts, in the
// order the documentation lists them.
var QueryParams = []string{"delay", "process_at", "unique_for", "max_retry", "timeout", "retention", "queue", "task_id"}

// ParseOptions reads enqueue options from query parameters:
//
//	delay=10s            run no sooner than this from now (Go duration)
//	process_at=RFC3339   run no sooner than this time (not with delay)
//	unique_for=1h        refuse a duplicate (same unique key) for this long
//	max_retry=3          retries before archiving; 0 = no retry
//	timeout=2m           bound one attempt
//	retention=24h        keep the completed task (and its result) this long
//	queue=critical       critical, default or bulk
//	task_id=abc          the task's ID (else a random UUID)
//
// Unset parameters take the type's defaults. A bad value, an unknown or a
// repeated parameter is a *tasks.FieldError naming the parameter.
func ParseOptions(q url.Values) (tasks.Opts, error) {
	var o tasks.Opts
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !isParam(k) {
			name := k
			if name == "" {
				name = `""` // "?=x": an answer must name the parameter
			}
			return o, fe(name, "unknown query parameter (want one of "+strings.Join(QueryParams, ", ")+")")
		}
		if len(q[k]) > 1 {
			return o, fe(k, "given more than once")
		}
	}
	var err error
	if v, ok := one(q, "delay"); ok {
		if o.ProcessIn, err = duration("delay", v, 0, MaxDelay, false); err != nil {
			return o, err
		}
	}
	if v, ok := one(q, "process_at"); ok {
		if _, dup := one(q, "delay"); dup {
			return o, fe("process_at", "cannot be combined with delay")
		}
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return o, fe("process_at", "must be an RFC 3339 time like 2026-01-02T15:04:05Z")
		}
		o.ProcessAt = t
	}
	if v, ok := one(q, "unique_for"); ok {
		if o.UniqueFor, err = duration("unique_for", v, time.Second, MaxUniqueFor, true); err != nil {
			return o, err
		}
	}
	if v, ok := one(q, "max_retry"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > MaxRetries {
			return o, fe("max_retry", fmt.Sprintf("must be an integer from 0 to %d", MaxRetries))
		}
		o.MaxRetry = n
		if n == 0 {
			o.MaxRetry = tasks.NoRetry
		}
	}
	if v, ok := one(q, "timeout"); ok {
		if o.Timeout, err = duration("timeout", v, time.Second, MaxTimeout, true); err != nil {
			return o, err
		}
	}
	if v, ok := one(q, "retention"); ok {
		if o.Retention, err = duration("retention", v, time.Second, MaxRetention, true); err != nil {
			return o, err
		}
	}
	if v, ok := one(q, "queue"); ok {
		if _, known := tasks.QueuePriorities()[v]; !known {
			return o, fe("queue", "must be one of critical, default, bulk")
		}
		o.Queue = v
	}
	if v, ok := one(q, "task_id"); ok {
		if err := checkTaskID(v); err != nil {
			return o, err
		}
		o.TaskID = v
	}
	return o, nil
}

// Values is the inverse of ParseOptions for the options a caller sets: the
// CLI builds its query string with it.
func Values(o tasks.Opts) url.Values {
	q := url.Values{}
	if o.ProcessIn > 0 {
		q.Set("delay", o.ProcessIn.String())
	}
	if !o.ProcessAt.IsZero() {
		q.Set("process_at", o.ProcessAt.Format(time.RFC3339Nano)) // ParseOptions keeps fractions
	}
	if o.UniqueFor > 0 {
		q.Set("unique_for", o.UniqueFor.String())
	}
	switch {
	case o.MaxRetry == tasks.NoRetry:
		q.Set("max_retry", "0")
	case o.MaxRetry > 0:
		q.Set("max_retry", strconv.Itoa(o.MaxRetry))
	}
	if o.Timeout > 0 {
		q.Set("timeout", o.Timeout.String())
	}
	if o.Retention > 0 {
		q.Set("retention", o.Retention.String())
	}
	if o.Queue != "" {
		q.Set("queue", o.Queue)
	}
	if o.TaskID != "" {
		q.Set("task_id", o.TaskID)
	}
	return q
}

func isParam(k string) bool {
	for _, p := range QueryParams {
		if p == k {
			return true
		}
	}
	return false
}

func one(q url.Values, k string) (string, bool) {
	v, ok := q[k]
	if !ok || len(v) == 0 {
		return "", false
	}
	return v[0], true
}

func fe(field, reason string) error { return &tasks.FieldError{Field: field, Reason: reason} }

func duration(field, v string, minD, maxD time.Duration, wholeSeconds bool) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fe(field, "must be a duration like 30s, 10m or 2h")
	}
	if d < minD || d > maxD {
		return 0, fe(field, fmt.Sprintf("must be between %s and %s", fmtDur(minD), fmtDur(maxD)))
	}
	if wholeSeconds && d%time.Second != 0 {
		return 0, fe(field, "must be a whole number of seconds (asynq stores seconds)")
	}
	return d, nil
}

func fmtDur(d time.Duration) string {
	switch {
	case d == 0:
		return "0s"
	case d > 24*time.Hour && d%(24*time.Hour) == 0:
		return fmt.Sprintf("%dh (%d days)", d/time.Hour, d/(24*time.Hour))
	case d%time.Hour == 0:
		return strconv.Itoa(int(d/time.Hour)) + "h"
	case d%time.Minute == 0:
		return strconv.Itoa(int(d/time.Minute)) + "m"
	}
	return d.String()
}

// checkTaskID allows IDs that read well in logs, URLs and Redis keys.
func checkTaskID(id string) error {
	if id == "" || len(id) > MaxTaskIDLen {
		return fe("task_id", fmt.Sprintf("must be 1 to %d characters", MaxTaskIDLen))
	}
	for _, r := range id {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.:", r)
		if !ok {
			return fe("task_id", "may contain only letters, digits and - _ . :")
		}
	}
	return nil
}
