// Package server is the plyrtasks worker: an asynq.Server that runs every
// task through one job.Registry, plus the loops asynq lacks.
//
//	srv := server.New(redisClient, registry, server.Options{Logger: logger, Metrics: metrics})
//	err := srv.Run(ctx) // blocks until ctx ends, then drains
//
// What it adds to asynq:
//
//   - One handler for every kind (asynq's ServeMux would answer NotFound and
//     retry): the registry decodes and validates the payload and archives a
//     malformed task or an unknown kind at once, with the reason.
//   - The middleware written once in package job around every run: a log
//     line per outcome, panic recovery, per-kind metrics, a tracing hook.
//   - Retries with exponential backoff and jitter that honour
//     job.RetryAfter.
//   - A drain that does not cost a retry: a task still running when
//     ShutdownTimeout ends goes back to pending with its retry count
//     unchanged (asynq requeues it; the server never cancels a task's
//     context before that), and the next worker picks it up.
//   - Unique locks (taken by package client) released when their task
//     completes or is archived.
//   - Periodic tasks, exactly one per tick however many workers run (see
//     periodic.go), listed in asynqmon's scheduler view.
//   - A repair loop that removes task IDs whose task hash is gone, which
//     would otherwise break asynqmon's queue list (see repair.go).
//   - Validated timing settings (Timing): no value in range can stop
//     one-off, delayed or periodic tasks.
package server
