package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/plyr-fm/plyrtasks/config"
	"github.com/plyr-fm/plyrtasks/export/audiogen"
	"github.com/plyr-fm/plyrtasks/storage"
	"github.com/plyr-fm/plyrtasks/store"
)

// DevArtistDID is the sample artist `dev seed` creates.
const DevArtistDID = "did:plc:plyrdevseedartist00000000"

// devTrack is one sample track: its served audio, an optional lossless
// original, and whether its audio is deliberately left out of storage.
type devTrack struct {
	title    string
	served   audiogen.Tone
	original *audiogen.Tone
	missing  bool
}

func devTracks() []devTrack {
	mb := int64(1 << 20)
	wav := func(freq float64, size int64) audiogen.Tone { return audiogen.Tone{Freq: freq}.ForSize(size) }
	original := audiogen.Tone{Format: audiogen.AIFF, Freq: 392}.ForSize(3 * mb)
	return []devTrack{
		{title: "Morning Light", served: wav(440, 2*mb)},
		{title: "Morning Light", served: wav(494, 3*mb/2)}, // same title: "Morning Light (2).wav"
		{title: "Lossless Session", served: wav(392, mb), original: &original},
		{title: "Tape Hiss / B-Side", served: wav(261.63, mb)},
		{title: "Lost Demo", served: wav(330, mb), missing: true}, // listed in MISSING_TRACKS.txt
	}
}

// newDevCmd is `plyrtasks dev`: helpers for trying plyrtasks locally.
func newDevCmd() *cobra.Command {
	dev := &cobra.Command{
		Use:   "dev",
		Short: "Helpers for trying plyrtasks locally (sample data)",
	}
	dev.AddCommand(newDevSeedCmd())
	return dev
}

func newDevSeedCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "seed",
		Short: "Load a sample artist with generated audio tracks into the store and storage",
		Long: `seed creates a sample artist (` + DevArtistDID + `) with five
tracks of generated audio (WAV tones, about 8 MB in all) in the configured
store (DATABASE_URL, or the embedded SQLite under DATA_DIR) and object
storage (STORAGE_URL, default DATA_DIR/storage): two tracks share a title,
one has a lossless AIFF original, and one's audio is deliberately missing
from storage, so an export shows its manifest. It prints the commands that
export the artist. Running it again changes nothing.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, _, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			return devSeed(cmd.Context(), cmd.OutOrStdout(), cfg)
		},
	}
}

func devSeed(ctx context.Context, out io.Writer, cfg *config.Config) error {
	st, err := store.Open(ctx, store.Options{DatabaseURL: cfg.DatabaseURL, DataDir: cfg.DataDir, EncryptionKey: cfg.SessionEncryptionKey})
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	obj, err := storage.FromConfig(ctx, cfg.Storage, cfg.DataDir)
	if err != nil {
		return err
	}

	if err := st.UpsertArtist(ctx, store.Artist{DID: DevArtistDID, Handle: "dev-artist.plyr.test", DisplayName: "Dev Artist"}); err != nil {
		return err
	}
	existing, err := st.ListArtistTracks(ctx, DevArtistDID)
	if err != nil {
		return err
	}
	tracks := devTracks()
	var total int64
	base := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	for i, t := range tracks {
		key := fmt.Sprintf("dev/audio/%d-%s.wav", i+1, slug(t.title))
		tr := store.Track{ArtistDID: DevArtistDID, Title: t.title, FileKey: key, FileType: "wav", CreatedAt: base.Add(time.Duration(i) * time.Minute)}
		if t.original != nil {
			tr.OriginalKey, tr.OriginalType = fmt.Sprintf("dev/originals/%d-%s.aiff", i+1, slug(t.title)), "aiff"
		}
		if !t.missing {
			n, err := putIfMissing(ctx, obj, tr.FileKey, t.served)
			if err != nil {
				return err
			}
			total += n
		}
		if t.original != nil {
			n, err := putIfMissing(ctx, obj, tr.OriginalKey, *t.original)
			if err != nil {
				return err
			}
			total += n
		}
		if len(existing) == 0 {
			if _, err := st.CreateTrack(ctx, tr); err != nil {
				return err
			}
		}
	}

	verb := "seeded"
	if len(existing) > 0 {
		verb = "already seeded"
	}
	fmt.Fprintf(out, "%s artist %s (dev-artist.plyr.test): %d tracks, %.1f MB of audio in %s\n",
		verb, DevArtistDID, len(tracks), float64(total)/1e6, obj)
	fmt.Fprintf(out, "  (\"Lost Demo\" has no audio in storage on purpose: the export lists it in MISSING_TRACKS.txt)\n\n")
	fmt.Fprintf(out, "next: run the system (in another terminal, same environment):\n\n  plyrtasks serve\n\n")
	fmt.Fprintf(out, "then export the artist, with a progress bar:\n\n  plyrtasks enqueue export:media '{\"export_id\":\"dev-%s\",\"artist_did\":\"%s\"}' --wait\n\n",
		strings.ToLower(rand.Text()[:8]), DevArtistDID)
	auth := ""
	if cfg.APIToken != "" {
		auth = ` -H "Authorization: Bearer $API_TOKEN"`
	}
	fmt.Fprintf(out, "or through the HTTP API (live progress at /v1/exports/{id}/events):\n\n  curl -X POST http://%s/v1/exports%s -d '{\"artist_did\":\"%s\"}'\n\n",
		cfg.HTTPAddr, auth, DevArtistDID)
	fmt.Fprintf(out, "the result's download_url is the zip: list it with unzip -l\n")
	return nil
}

// putIfMissing stores the tone under key unless an object is already
// there, and returns the object's size.
func putIfMissing(ctx context.Context, obj storage.Storage, key string, t audiogen.Tone) (int64, error) {
	if o, err := obj.Stat(ctx, key); err == nil {
		return o.Size, nil
	} else if !errors.Is(err, storage.ErrNotExist) {
		return 0, err
	}
	o, err := storage.Put(ctx, obj, key, t.Reader(), storage.CreateOptions{ContentType: "audio/" + t.Format.Ext()})
	return o.Size, err
}

// slug makes a title key-friendly: lower-case letters and digits joined by
// dashes.
func slug(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(r)
		} else {
			dash = true
		}
	}
	return b.String()
}
