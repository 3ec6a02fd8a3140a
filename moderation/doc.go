// Package moderation is plyrtasks' side of plyr.fm's copyright moderation:
// the HTTP client for the moderation service (POST /scan, which asks AuDD
// for fingerprint matches) and for the labeler's internal endpoints
// (POST /internal/events, POST /internal/negated-labels), the flag rule
// applied to a scan's answer, and the guard that decides which audio URLs
// may be sent out for scanning at all.
//
// The flag rule lives here rather than in the moderation service so that a
// change of the service's own flag (is_flagged) cannot silently change
// which tracks plyr.fm flags.
//
// Errors say whether a later attempt can succeed: Retryable and
// RetryAfterHint classify them (network failures, timeouts, 408, 429 and 5xx
// are transient; other 4xx, a rejected key, a malformed answer and a refused
// audio URL are not). Keys are sent in the X-Moderation-Key header and never
// appear in errors or logs.
package moderation
