// Package handlers implements every task type declared in package tasks:
// each file reads top to bottom as args (declared in tasks), constructor,
// handler, helpers. Register wires them all into a job.Registry; the worker
// and the producer's in-process fallback both run that registry.
package handlers

import (
	"errors"
	"log/slog"

	"github.com/redis/go-redis/v9"

	"github.com/plyr-fm/plyrtasks/config"
	"github.com/plyr-fm/plyrtasks/job"
	"github.com/plyr-fm/plyrtasks/store"
)

// Deps are what handlers need. Families add their clients here.
type Deps struct {
	Config *config.Config
	Store  store.Store
	// Redis is the same Redis the tasks live in (locks, dedupe). May be nil
	// for handlers that do not need it.
	Redis  redis.UniversalClient
	Logger *slog.Logger
}

// Register adds every handler to r: one line per task type.
func Register(r *job.Registry, d Deps) error {
	var errs []error
	// Task families register here, one line per type:
	//   job.Register(r, NewCopyrightScan(d).Work)
	return errors.Join(errs...)
}
