package pds

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/plyr-fm/plyrtasks/job"
)

// ErrRecordNotFound matches (errors.Is) an XRPC RecordNotFound answer.
var ErrRecordNotFound = errors.New("record not found")

// XRPCError is a non-2xx answer from a PDS.
type XRPCError struct {
	// Method is the XRPC method (NSID) that failed.
	Method string
	// Status is the HTTP status code.
	Status int
	// Name and Message are the XRPC error body's "error" and "message".
	Name    string
	Message string
	// RetryAfter is the server's requested delay (Retry-After, or
	// RateLimit-Reset on a 429), zero when it gave none.
	RetryAfter time.Duration
}

func (e *XRPCError) Error() string {
	s := fmt.Sprintf("%s: HTTP %d", e.Method, e.Status)
	if e.Name != "" {
		s += " " + e.Name
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// Is makes errors.Is(err, ErrRecordNotFound) true for RecordNotFound.
func (e *XRPCError) Is(target error) bool {
	return target == ErrRecordNotFound && e.Name == "RecordNotFound"
}

// IsInvalidSwap reports whether err is a failed compare-and-swap
// (putRecord's swapRecord did not match): re-read and try again.
func IsInvalidSwap(err error) bool {
	var xe *XRPCError
	return errors.As(err, &xe) && xe.Name == "InvalidSwap"
}

// SessionExpiredError says why a session cannot act any more. It wraps
// job.ErrSessionExpired; the client returns it inside job.Permanent.
type SessionExpiredError struct {
	SessionID string
	Reason    string
}

func (e *SessionExpiredError) Error() string {
	return "session expired: " + e.Reason + " (session " + e.SessionID + ")"
}

func (e *SessionExpiredError) Unwrap() error { return job.ErrSessionExpired }

// DefaultRateLimitDelay is the wait after a 429 that named no delay.
const DefaultRateLimitDelay = 30 * time.Second

// maxServerDelay caps a server-requested delay: a wild Retry-After must not
// park a task for days.
const maxServerDelay = time.Hour

// Classify maps err to the job pipeline's classes:
//
//   - nil stays nil; an already permanent error stays as it is;
//   - an expired session (job.ErrSessionExpired) is permanent;
//   - 429 retries after the server's delay (DefaultRateLimitDelay without one);
//   - 5xx and 408 retry (after Retry-After when given);
//   - any other 4xx is permanent: it will never succeed, and the XRPC error
//     name and message are the archived reason;
//   - anything else (network errors, timeouts, malformed answers) retries.
func Classify(err error) error {
	if err == nil || job.IsPermanent(err) {
		return err
	}
	if errors.Is(err, job.ErrSessionExpired) {
		return job.Permanent(err)
	}
	var xe *XRPCError
	if !errors.As(err, &xe) {
		return err
	}
	switch {
	case xe.Status == http.StatusTooManyRequests:
		d := xe.RetryAfter
		if d <= 0 {
			d = DefaultRateLimitDelay
		}
		return job.RetryAfter(d, err)
	case xe.Status >= 500 || xe.Status == http.StatusRequestTimeout:
		if xe.RetryAfter > 0 {
			return job.RetryAfter(xe.RetryAfter, err)
		}
		return err
	case xe.Status >= 400:
		return job.Permanent(err)
	}
	return err
}

// serverDelay reads the delay a server asked for: Retry-After (seconds or an
// HTTP date), else RateLimit-Reset (unix seconds, as the reference PDS sends
// with its 429s). Zero when neither is usable.
func serverDelay(h http.Header, now time.Time) time.Duration {
	var d time.Duration
	if v := h.Get("Retry-After"); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
			d = time.Duration(n) * time.Second
		} else if t, err := http.ParseTime(v); err == nil {
			d = t.Sub(now)
		}
	} else if v := h.Get("RateLimit-Reset"); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			d = time.Unix(n, 0).Sub(now)
		}
	}
	if d <= 0 {
		return 0
	}
	return min(d, maxServerDelay)
}
