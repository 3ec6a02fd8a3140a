// Package client is how backend code hands work to plyrtasks: one typed
// function per task type (ScheduleCopyrightScan, ScheduleLike, …), plus
// Enqueue for any declared args and EnqueueRaw for a type name and a JSON
// payload (the HTTP API and the CLI).
//
//	c := client.New(redisClient, client.Options{Inline: registry})
//	res, err := c.ScheduleCopyrightScan(ctx, trackID, audioURL)
//	// res.Outcome: client.Enqueued (res.ID), client.Duplicate (res.ID is the
//	// task already queued), or client.RanInline (Redis was unavailable).
//
// Every call validates the arguments first (a *tasks.FieldError names the
// bad field) and takes the type's default options from package tasks;
// Options such as In, UniqueFor or Queue override them for one call.
//
// Uniqueness is plyrtasks' own, not asynq's: a unique task holds a lock
// that dies with it. A duplicate is refused only while the task holding the
// lock is pending, scheduled, retrying or running; once it completed, was
// archived or was deleted, the next enqueue takes the lock over at once.
//
// When Redis is not configured or an enqueue fails, the task runs
// in-process (Options.Fallback, FallbackInline by default) through the same
// handlers and middleware as the worker, with bounded concurrency; Close
// drains those runs. With FallbackError the call returns ErrUnavailable
// instead.
//
// The package imports no handler dependencies: backend builds that only
// enqueue stay small.
package client
