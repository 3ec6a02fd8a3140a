// Package control is what an on-call operator does to tasks and queues,
// for the CLI and the HTTP API alike: list tasks by state and type, show
// one (payload and result with secrets redacted), retry an archived task,
// cancel a running or waiting one, pause and resume a queue, read queue
// stats, and strike or restore task types (package strikes).
//
// A Controller works on one namespace's queues ("<namespace>:<queue>")
// through asynq's Inspector; HTTPHandler serves it under /v1/, and Remote
// is its Go client, so the CLI runs the same operations against a running
// `plyrtasks serve` or straight against Redis (both implement Controls).
//
// Cancel goes further than asynq's CancelProcessing, which only cancels
// the running handler's context: asynq then counts the run as failed and
// retries it, so the task would come back. Cancel waits (up to
// Options.CancelWait) for the run to end and archives the task, where it
// stays visible and can be retried.
package control
