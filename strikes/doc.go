// Package strikes blocks a task type, or a task type with one argument
// value (every export:media of one artist_did), at runtime and without a
// deploy: enqueues are refused with job.ErrStruck and tasks already queued
// are archived with the reason when they come up, until the strike is
// restored.
//
// Strikes live in Redis, in the hash "<namespace>:strikes" (field: the
// rule's key, "kind" or "kind|field=value"; value: JSON {reason, by, at}),
// written by a Store (the CLI's strike and restore, the HTTP API). Every
// worker and producer keeps a copy in memory through a Watcher, which
// reloads it when a change is published on "<namespace>:strikes:changed"
// and, because pub/sub messages are lost while a connection is down, every
// PollInterval (5s) as well. Matching a task is then a map lookup; the
// payload is decoded (once, top-level fields only) only when its kind has
// a strike on an argument.
//
// A struck task that was already queued is archived, not completed: the
// run returns job.Permanent(*StruckError), so asynq archives it at once
// with "struck: <reason> (strike <key>)" as its last error, the log line
// and metrics say struck, and after restore an operator can retry it from
// the dashboard or with `plyrtasks tasks retry ID`. Completing it as a
// silent success would lose the work with no trace of why; retrying it
// would run it against the operator's will once retries outlast the
// strike.
//
// A Watcher fails open: until its first read of Redis succeeds it knows no
// strike (and it logs why), and when a reload fails it keeps the strikes
// it last read.
package strikes
