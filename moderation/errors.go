package moderation

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// StatusError is a non-2xx answer from the moderation service or the
// labeler.
type StatusError struct {
	// Op names the call: "moderation scan", "labeler report", ...
	Op         string
	StatusCode int
	// Body is the start of the answer's body (at most maxErrorBody bytes),
	// on one line, for the failure reason.
	Body string
	// RetryAfter is the server's Retry-After, zero when absent.
	RetryAfter time.Duration
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("%s: HTTP %d %s", e.Op, e.StatusCode, http.StatusText(e.StatusCode))
	switch e.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden:
		msg += " (key rejected: check the configured key)"
	}
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

// Retryable: 408, 425, 429 and 5xx may pass later; any other status means
// the request itself is wrong (bad key, bad audio URL, unknown endpoint).
func (e *StatusError) retryable() bool {
	switch {
	case e.StatusCode == http.StatusRequestTimeout,
		e.StatusCode == http.StatusTooEarly,
		e.StatusCode == http.StatusTooManyRequests,
		e.StatusCode >= 500:
		return true
	}
	return false
}

// ProtocolError is a 2xx answer that cannot be read: not JSON, or without a
// field the contract requires. Retrying does not fix a server that answers
// in another format, so it is permanent.
type ProtocolError struct {
	Op     string
	Reason string
	Err    error
}

func (e *ProtocolError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: unreadable answer: %s: %v", e.Op, e.Reason, e.Err)
	}
	return fmt.Sprintf("%s: unreadable answer: %s", e.Op, e.Reason)
}

func (e *ProtocolError) Unwrap() error { return e.Err }

// TimeoutError is a request that got no complete answer within the
// client's timeout. It is transient.
type TimeoutError struct {
	Op      string
	Timeout time.Duration
	Err     error
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("%s: no answer within %s: %v", e.Op, e.Timeout, e.Err)
}

func (e *TimeoutError) Unwrap() error { return e.Err }

// Retryable reports whether a later attempt of the failed call may succeed:
// true for network failures, timeouts, 408, 425, 429 and 5xx answers and a
// temporary failure to check an audio URL; false for other statuses (a
// rejected key included), malformed answers and refused audio URLs.
func Retryable(err error) bool {
	if err == nil {
		return false
	}
	var se *StatusError
	if errors.As(err, &se) {
		return se.retryable()
	}
	var pe *ProtocolError
	if errors.As(err, &pe) {
		return false
	}
	var ae *AudioURLError
	if errors.As(err, &ae) {
		return ae.Temporary
	}
	var ce *ConfigError
	if errors.As(err, &ce) {
		return false
	}
	return true
}

// RetryAfterHint returns the delay a 429 or 503 answer asked for with
// Retry-After, and whether there was one.
func RetryAfterHint(err error) (time.Duration, bool) {
	var se *StatusError
	if errors.As(err, &se) && se.RetryAfter > 0 {
		return se.RetryAfter, true
	}
	return 0, false
}

// ConfigError is a client built or called with settings that cannot work.
type ConfigError struct{ Reason string }

func (e *ConfigError) Error() string { return "moderation: " + e.Reason }

// maxErrorBody bounds how much of an error answer goes into the error.
const maxErrorBody = 512

// maxRetryAfter caps a server's Retry-After: a misconfigured server asking
// for a day must not park a scan that long.
const maxRetryAfter = time.Hour

// parseRetryAfter reads Retry-After as delay-seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.Atoi(v); err == nil {
		if n <= 0 {
			return 0
		}
		d = time.Duration(n) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	if d <= 0 {
		return 0
	}
	return min(d, maxRetryAfter)
}

// errorBody turns the start of an error answer into one printable line.
func errorBody(b []byte) string {
	cut := len(b) > maxErrorBody
	if cut {
		b = b[:maxErrorBody]
	}
	s := strings.Join(strings.Fields(strings.ToValidUTF8(string(b), "")), " ")
	if cut {
		s += "…"
	}
	return s
}
