// Package tasks declares every task type plyrtasks knows, once: its kind name
// (asynq style, "copyright:scan"), its JSON arguments with validation, and its
// default options (queue, retries, timeout, uniqueness, retention).
//
// It is deliberately dependency-free (standard library only) so that backend
// code can import it, through package client, without pulling in the
// handlers' dependencies (PDS, S3, moderation clients). The Go client, the
// HTTP API, the CLI, the in-process fallback and the worker's mux all read
// the declarations through All, Lookup and Decode.
//
// Adding a task type: declare its args struct here (a file per family), add
// one line to All, then write its handler in package handlers and register it
// there. See the README's "Adding a task type".
package tasks
