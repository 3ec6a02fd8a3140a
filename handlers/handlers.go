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
	"github.com/plyr-fm/plyrtasks/export"
	"github.com/plyr-fm/plyrtasks/job"
	"github.com/plyr-fm/plyrtasks/moderation"
	"github.com/plyr-fm/plyrtasks/pds"
	"github.com/plyr-fm/plyrtasks/storage"
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
	// Moderation is the moderation service and labeler client (copyright).
	// nil: built from Config.Moderation, and still nil (scans recorded as
	// "skipped: moderation disabled") when MODERATION_URL is unset.
	Moderation *moderation.Client
	// PDS acts as users on their PDS (the ATProto family). nil: built
	// from Config.ATProto, Store and Redis.
	PDS *pds.Client
	// Storage is the object storage tracks are read from and exports
	// written to. nil: opened from Config.Storage (STORAGE_URL) on the
	// first export.
	Storage storage.Storage
	// Exports runs media exports. nil: a worker-side service is built from
	// Store and Storage on the first export.
	Exports *export.Service
}

// Register adds every handler to r: one line per task type.
func Register(r *job.Registry, d Deps) error {
	var errs []error
	// Task families register here, one line per type:
	//   job.Register(r, NewCopyrightScan(d).Work)
	d, err := withModeration(d)
	errs = append(errs, err)
	job.Register(r, NewCopyrightScan(d).Work)
	job.Register(r, NewCopyrightSyncResolutions(d).Work)
	d, err = withPDS(d)
	errs = append(errs, err)
	job.Register(r, NewATProtoSync(d).Work)
	job.Register(r, NewTealScrobble(d).Work)
	job.Register(r, NewAlbumListSync(d).Work)
	job.Register(r, NewLike(d).Work)
	job.Register(r, NewUnlike(d).Work)
	job.Register(r, NewCommentCreate(d).Work)
	job.Register(r, NewCommentUpdate(d).Work)
	job.Register(r, NewCommentDelete(d).Work)
	job.Register(r, NewMediaExport(d).Work)
	return errors.Join(errs...)
}
