package handlers

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/plyr-fm/plyrtasks/export"
	"github.com/plyr-fm/plyrtasks/job"
	"github.com/plyr-fm/plyrtasks/storage"
	"github.com/plyr-fm/plyrtasks/tasks"
)

// Media export (issue 4). export:media streams every track of an artist
// into one zip in object storage, uploaded while it is produced, with
// progress in the job row and the task result. The work is
// export.Service.Run; this file wires it into the registry.
//
// Args: tasks.MediaExportArgs {export_id, artist_did}. Exports are
// requested through export.Service.Request (one active export per artist,
// enforced by the job row); a task enqueued directly gets its job row when
// it runs.

// MediaExport handles export:media.
type MediaExport struct {
	d Deps

	once sync.Once
	svc  *export.Service
	err  error
}

// NewMediaExport returns the handler. It uses d.Exports when set, else
// builds a worker-side export service on first use from d.Store and
// d.Storage (or, without Storage, STORAGE_URL from d.Config) — on first
// use, so that registering has no side effects such as creating the
// storage directory.
func NewMediaExport(d Deps) *MediaExport { return &MediaExport{d: d, svc: d.Exports} }

// Work runs one attempt of an export.
func (h *MediaExport) Work(ctx context.Context, j *job.Job[tasks.MediaExportArgs]) error {
	svc, err := h.service(ctx)
	if err != nil {
		// A wiring problem: retried, so fixing the deployment saves the export.
		return fmt.Errorf("export:media: %w", err)
	}
	return svc.Run(ctx, j.Args, j.Task)
}

func (h *MediaExport) service(ctx context.Context) (*export.Service, error) {
	h.once.Do(func() {
		if h.svc != nil {
			return
		}
		d := h.d
		if d.Store == nil {
			h.err = errors.New("no store (handlers.Deps.Store)")
			return
		}
		o := export.Options{Store: d.Store, Storage: d.Storage, Logger: d.Logger}
		if d.Config != nil {
			o.URLExpiry = d.Config.Storage.ExportURLExpiry
			if o.Storage == nil {
				if o.Storage, h.err = storage.FromConfig(ctx, d.Config.Storage, d.Config.DataDir); h.err != nil {
					return
				}
			}
		}
		if o.Storage == nil {
			h.err = errors.New("no object storage (handlers.Deps.Storage or Config)")
			return
		}
		h.svc, h.err = export.New(o)
	})
	return h.svc, h.err
}
