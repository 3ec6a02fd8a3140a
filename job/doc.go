// Package job is the execution side shared by the asynq worker (package
// server) and the producer's in-process fallback (package client): a
// registry of typed handlers, the middleware chain written once (panic
// recovery, logging, metrics, tracing), and the error classes that decide
// between retry and archive.
//
// It exists as its own package so that client can run tasks in-process
// through exactly the worker's pipeline without importing server or the
// handlers' dependencies: main builds one Registry and hands it to both.
package job
