package export_test

import (
	"archive/zip"
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/plyr-fm/plyrtasks/export"
	"github.com/plyr-fm/plyrtasks/export/audiogen"
	"github.com/plyr-fm/plyrtasks/storage"
	"github.com/plyr-fm/plyrtasks/store"
	"github.com/plyr-fm/plyrtasks/tasks"
)

// Request an export, run it as the worker would, and list the zip.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "export-example-")
	defer os.RemoveAll(dir)
	st, err := store.Open(ctx, store.Options{DataDir: dir})
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		log.Fatal(err)
	}
	obj, _ := storage.NewFile(filepath.Join(dir, "storage"))

	did := "did:plc:exampleartist000000000000"
	st.UpsertArtist(ctx, store.Artist{DID: did, Handle: "example.test"})
	for _, title := range []string{"Dawn", "Dawn", "Dusk: Reprise"} {
		key := "audio/" + fmt.Sprint(len(title)) + title[:2] + ".wav"
		storage.Put(ctx, obj, key, audiogen.Tone{Seconds: 0.5}.Reader(), storage.CreateOptions{})
		st.CreateTrack(ctx, store.Track{ArtistDID: did, Title: title, FileKey: key, FileType: "wav"})
	}

	// The producer side: record the job and enqueue the task.
	var queued tasks.MediaExportArgs
	svc, _ := export.New(export.Options{
		Store: st, Storage: obj,
		Enqueuer: export.EnqueueFunc(func(_ context.Context, a tasks.MediaExportArgs) (string, error) {
			queued = a
			return a.ExportID, nil
		}),
	})
	j, created, err := svc.Request(ctx, did)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("created:", created, "status:", j.Status)

	// The worker side: the export:media handler calls Run.
	if err := svc.Run(ctx, queued, nil); err != nil {
		log.Fatal(err)
	}
	state, _ := svc.Get(ctx, j.ID)
	fmt.Println("status:", state.Status, "percent:", state.Percent, "tracks:", state.Result.Tracks)

	zr, _ := zip.OpenReader(state.Result.DownloadURL)
	defer zr.Close()
	for _, f := range zr.File {
		fmt.Println(f.Name, f.UncompressedSize64)
	}
	// Output:
	// created: true status: pending
	// status: done percent: 100 tracks: 3
	// Dawn.wav 88244
	// Dawn (2).wav 88244
	// Dusk_ Reprise.wav 88244
}

func ExampleSafeName() {
	fmt.Println(export.SafeName("AC/DC: Live?", 100))
	fmt.Println(export.SafeName("../../secret", 100))
	fmt.Println(export.SafeName("NUL", 100))
	// Output:
	// AC_DC_ Live_
	// _.._secret
	// NUL_
}
