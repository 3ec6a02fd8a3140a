package main

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/plyr-fm/plyrtasks/export"
	"github.com/plyr-fm/plyrtasks/storage"
	"github.com/plyr-fm/plyrtasks/store"
	"github.com/plyr-fm/plyrtasks/tasks"
)

// runCmd runs cmd with args and returns its output.
func runCmd(t *testing.T, cmd *cobra.Command, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

// `dev seed` on embedded defaults stores the sample artist and audio (one
// track's audio deliberately absent), prints the next commands, changes
// nothing when run again, and its export has the expected entries.
func TestDevSeed(t *testing.T) {
	dataDir := t.TempDir()
	t.Setenv("DATA_DIR", dataDir)
	for _, v := range []string{"DATABASE_URL", "STORAGE_URL", "REDIS_URL"} {
		t.Setenv(v, "")
	}
	out, err := runCmd(t, newDevCmd(), "seed")
	if err != nil {
		t.Fatalf("dev seed: %v\n%s", err, out)
	}
	for _, want := range []string{"seeded artist " + DevArtistDID, "plyrtasks serve", "plyrtasks enqueue export:media", `"artist_did":"` + DevArtistDID + `"`, "--wait", "unzip -l"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	out2, err := runCmd(t, newDevCmd(), "seed")
	if err != nil || !strings.Contains(out2, "already seeded") {
		t.Fatalf("second seed: %v\n%s", err, out2)
	}

	ctx := context.Background()
	st, err := store.Open(ctx, store.Options{DataDir: dataDir})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	tracks, err := st.ListArtistTracks(ctx, DevArtistDID)
	if err != nil || len(tracks) != 5 {
		t.Fatalf("%d tracks after two seeds (%v), want 5", len(tracks), err)
	}
	obj, err := storage.NewFile(filepath.Join(dataDir, "storage"))
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, tr := range tracks {
		o, err := obj.Stat(ctx, tr.FileKey)
		if tr.Title == "Lost Demo" {
			if !errors.Is(err, storage.ErrNotExist) {
				t.Fatalf("Lost Demo's audio exists: %v", err)
			}
			continue
		}
		if err != nil || o.Size < 1<<20 {
			t.Fatalf("%s: %+v %v", tr.FileKey, o, err)
		}
		total += o.Size
	}
	if total < 5<<20 {
		t.Fatalf("seeded %d bytes of served audio, want several MB", total)
	}

	svc, err := export.New(export.Options{Store: st, Storage: obj})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Run(ctx, tasks.MediaExportArgs{ExportID: "dev-test", ArtistDID: DevArtistDID}, nil); err != nil {
		t.Fatal(err)
	}
	state, err := svc.Get(ctx, "dev-test")
	if err != nil {
		t.Fatal(err)
	}
	zr, err := zip.OpenReader(state.Result.DownloadURL)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
	}
	want := []string{"Morning Light.wav", "Morning Light (2).wav", "Lossless Session.aiff", "Tape Hiss _ B-Side.wav", "MISSING_TRACKS.txt"}
	if strings.Join(names, "|") != strings.Join(want, "|") {
		t.Fatalf("zip entries %q, want %q", names, want)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "storage", "exports", "dev-test")); err != nil {
		t.Fatal(err)
	}
}

func TestBenchExportCommand(t *testing.T) {
	out, err := runCmd(t, newBenchExportCmd(), "export", "--size", "48MiB", "--tracks", "6", "--part-size", "5MiB", "--rounds", "1", "--dir", t.TempDir())
	if err != nil {
		t.Fatalf("bench export: %v\n%s", err, out)
	}
	for _, want := range []string{"export of 6 tracks, 48.0 MiB", "plain copy:", "MB/s", "peak RSS", "ratio export/copy:"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if _, err := runCmd(t, newBenchExportCmd(), "export", "--dest", "nowhere", "--part-size", "5MiB", "--size", "1MiB"); err == nil || !strings.Contains(err.Error(), "nowhere") {
		t.Fatalf("unknown destination: %v", err)
	}
}
