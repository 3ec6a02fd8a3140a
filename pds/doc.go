// Package pds acts as a user on their Personal Data Server (PDS) for the
// ATProto task family: it loads a stored session by ID (never a token from a
// payload), keeps its tokens fresh, reads and writes records through
// indigo's XRPC client, and classifies failures for the job pipeline.
//
// Token refresh happens at most once per expiry of a session, however many
// tasks and worker processes use that session at once: refreshers queue on
// an in-process lock and a Redis lock per session (internal/rdb), re-read the
// session once they hold it (another process may have refreshed already),
// and save the rotated tokens with the store's compare-and-swap on the old
// refresh token. A refresh token is therefore used once and never lost.
//
// Errors: every non-2xx XRPC response becomes an *XRPCError (status, error
// name, message, Retry-After). Classify maps errors to the job classes:
// network errors and 5xx retry, 429 retries after the server's delay, other
// 4xx are permanent with the XRPC reason, and a session that cannot be
// refreshed is permanent and wraps job.ErrSessionExpired.
package pds
