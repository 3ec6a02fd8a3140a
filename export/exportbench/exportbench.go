// Package exportbench measures a media export against a plain copy of the
// same bytes, in the same process and run: throughput, and peak resident
// memory of each phase. BenchmarkExport (package export) and
// `plyrtasks bench export` both run it.
//
// Tracks are synthesized on the fly by a storage whose objects are
// deterministic byte streams (nothing stored, so a gigabyte costs no disk
// and no memory); the zip goes to a real destination: an S3 multipart
// upload over loopback to a server that discards the bytes (s3sink, the
// real SDK path including request signing), or a local directory.
package exportbench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/plyr-fm/plyrtasks/export"
	"github.com/plyr-fm/plyrtasks/storage"
	"github.com/plyr-fm/plyrtasks/storage/s3sink"
	"github.com/plyr-fm/plyrtasks/store"
	"github.com/plyr-fm/plyrtasks/tasks"
)

// Destinations.
const (
	DestSink = "s3sink" // S3 protocol to a discarding loopback server
	DestFile = "file"   // a local directory
)

// Options configure Run.
type Options struct {
	// Tracks default 40.
	Tracks int
	// TotalBytes of source audio, split evenly. Default 1 GiB.
	TotalBytes int64
	// Dest is DestSink (default) or DestFile; or pass Storage.
	Dest string
	// Storage overrides Dest (BenchmarkExport passes gofakes3).
	Storage storage.Storage
	// Dir holds the SQLite store and, for DestFile, the objects. Default:
	// a temporary directory, removed afterwards.
	Dir string
	// PartSize for S3 uploads. Default storage.DefaultPartSize.
	PartSize int64
	// Rounds of (copy, export), alternating which goes first. Default 2.
	Rounds int
}

// Phase is one measured pass over the bytes.
type Phase struct {
	Duration time.Duration
	Bytes    int64
	// StartRSS is the resident memory when the phase started (after a GC
	// returned what it could), PeakRSS the highest during the phase
	// (VmHWM, reset at the start: see Result.RSSReset). Both include the
	// binary's own code pages (file-backed, shared, evictable);
	// PeakAnon is the highest anonymous resident memory — what the process
	// allocated — sampled every 5ms.
	StartRSS, PeakRSS, PeakAnon int64
}

// MBps is the phase's throughput in MB/s (10^6 bytes).
func (p Phase) MBps() float64 { return float64(p.Bytes) / 1e6 / p.Duration.Seconds() }

// Result of Run.
type Result struct {
	Dest   string
	Tracks int
	Rounds int
	// Copy is io.Copy of every track into one upload to the destination;
	// Export is the export of the same tracks.
	Copy, Export Phase
	ZipBytes     int64
	// Ratio is Export's throughput over Copy's.
	Ratio float64
	// RSSReset says whether the kernel let VmHWM be reset per phase
	// (/proc/self/clear_refs); otherwise PeakRSS is the process's peak so
	// far.
	RSSReset bool
}

func (r Result) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "export of %d tracks, %s of audio, to %s (zip %s); best of %d rounds\n", r.Tracks, mib(r.Export.Bytes), r.Dest, mib(r.ZipBytes), r.Rounds)
	for _, p := range []struct {
		name string
		ph   Phase
	}{{"plain copy:", r.Copy}, {"export:    ", r.Export}} {
		fmt.Fprintf(&b, "  %s %8.1f MB/s  %6.2fs  peak RSS %s (%s at start; peak anonymous %s)\n",
			p.name, p.ph.MBps(), p.ph.Duration.Seconds(), mib(p.ph.PeakRSS), mib(p.ph.StartRSS), mib(p.ph.PeakAnon))
	}
	fmt.Fprintf(&b, "  ratio export/copy: %.2f (goal >= 0.80); peak RSS goal <= 64 MiB", r.Ratio)
	if !r.RSSReset {
		b.WriteString(" (VmHWM could not be reset: peak is the process's)")
	}
	return b.String()
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// Run sets up the store and storage, then measures the plain copy and the
// export.
func Run(ctx context.Context, o Options) (Result, error) {
	if o.Tracks <= 0 {
		o.Tracks = 40
	}
	if o.TotalBytes <= 0 {
		o.TotalBytes = 1 << 30
	}
	if o.Dest == "" {
		o.Dest = DestSink
	}
	if o.Rounds <= 0 {
		o.Rounds = 2
	}
	if o.Dir == "" {
		dir, err := os.MkdirTemp("", "plyrtasks-bench-")
		if err != nil {
			return Result{}, err
		}
		defer os.RemoveAll(dir)
		o.Dir = dir
	}

	dest := o.Storage
	res := Result{Dest: o.Dest, Tracks: o.Tracks, Rounds: o.Rounds}
	switch {
	case dest != nil:
		res.Dest = dest.String()
	case o.Dest == DestSink:
		sink := s3sink.Start()
		defer sink.Close()
		s, err := sink.Storage(storage.S3Options{PartSize: o.PartSize})
		if err != nil {
			return Result{}, err
		}
		dest, res.Dest = s, "S3 multipart upload to a discarding loopback server (s3sink)"
	case o.Dest == DestFile:
		f, err := storage.NewFile(filepath.Join(o.Dir, "objects"))
		if err != nil {
			return Result{}, err
		}
		dest, res.Dest = f, "local files ("+f.Root()+")"
	default:
		return Result{}, fmt.Errorf("exportbench: unknown destination %q (want %s or %s)", o.Dest, DestSink, DestFile)
	}

	st, err := store.Open(ctx, store.Options{DataDir: filepath.Join(o.Dir, "db")})
	if err != nil {
		return Result{}, err
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		return Result{}, err
	}
	src := NewSynth()
	did := "did:plc:benchartist0000000000000"
	if err := st.UpsertArtist(ctx, store.Artist{DID: did, Handle: "bench.test"}); err != nil {
		return Result{}, err
	}
	per := o.TotalBytes / int64(o.Tracks)
	var keys []string
	for i := range o.Tracks {
		size := per
		if i == o.Tracks-1 {
			size = o.TotalBytes - per*int64(o.Tracks-1)
		}
		key := src.Add(size)
		keys = append(keys, key)
		if _, err := st.CreateTrack(ctx, store.Track{ArtistDID: did, Title: "Track " + strconv.Itoa(i%7), FileKey: key, FileType: "flac"}); err != nil {
			return Result{}, err
		}
	}
	both := &Routed{Synth: src, Dest: dest}

	svc, err := export.New(export.Options{Store: st, Storage: both})
	if err != nil {
		return Result{}, err
	}
	// Rounds alternate which phase goes first (page cache and writeback
	// state favour whichever runs second); each phase keeps its fastest
	// round and its highest peak.
	res.RSSReset = true
	var state export.State
	for round := range o.Rounds {
		phases := []func() error{
			func() error { // plain copy: the same bytes, the same destination, no zip
				res.RSSReset = resetPeakRSS() && res.RSSReset
				startRSS, anon, start := procStatus("VmRSS:"), sampleAnon(), time.Now()
				n, err := plainCopy(ctx, both, keys)
				if err != nil {
					anon()
					return fmt.Errorf("plain copy: %w", err)
				}
				res.Copy = better(res.Copy, Phase{Duration: time.Since(start), Bytes: n, StartRSS: startRSS, PeakRSS: procStatus("VmHWM:"), PeakAnon: anon()})
				return nil
			},
			func() error {
				id := fmt.Sprintf("bench-%d", round)
				args := tasks.MediaExportArgs{ExportID: id, ArtistDID: did}
				res.RSSReset = resetPeakRSS() && res.RSSReset
				startRSS, anon, start := procStatus("VmRSS:"), sampleAnon(), time.Now()
				err := svc.Run(ctx, args, nil)
				peakAnon := anon()
				if err != nil {
					return fmt.Errorf("export: %w", err)
				}
				res.Export = better(res.Export, Phase{Duration: time.Since(start), Bytes: o.TotalBytes, StartRSS: startRSS, PeakRSS: procStatus("VmHWM:"), PeakAnon: peakAnon})
				if state, err = svc.Get(ctx, id); err != nil {
					return err
				}
				if state.Result == nil || state.Result.Tracks != o.Tracks {
					return fmt.Errorf("export result %+v, want %d tracks", state.Result, o.Tracks)
				}
				return dest.Delete(ctx, state.Result.Key)
			},
		}
		if round%2 == 1 {
			phases[0], phases[1] = phases[1], phases[0]
		}
		for _, ph := range phases {
			if err := ph(); err != nil {
				return Result{}, err
			}
		}
	}
	res.ZipBytes = state.Result.Size
	res.Ratio = res.Export.MBps() / res.Copy.MBps()
	return res, nil
}

// better keeps the faster duration and the higher peak of two rounds.
func better(a, b Phase) Phase {
	if a.Duration == 0 {
		return b
	}
	if b.Duration < a.Duration {
		a.Duration = b.Duration
	}
	a.PeakRSS = max(a.PeakRSS, b.PeakRSS)
	a.PeakAnon = max(a.PeakAnon, b.PeakAnon)
	a.StartRSS = max(a.StartRSS, b.StartRSS)
	return a
}

// plainCopy copies every object into one upload with io.CopyBuffer and the
// export's buffer size.
func plainCopy(ctx context.Context, s storage.Storage, keys []string) (int64, error) {
	u, err := s.Create(ctx, "bench/plain-copy.bin", storage.CreateOptions{})
	if err != nil {
		return 0, err
	}
	defer u.Abort(ctx)
	buf := make([]byte, 256<<10)
	var total int64
	for _, k := range keys {
		rc, err := s.Open(ctx, k, 0)
		if err != nil {
			return total, err
		}
		n, err := io.CopyBuffer(u, readerOnly{rc}, buf)
		rc.Close()
		total += n
		if err != nil {
			return total, err
		}
	}
	if _, err := u.Complete(ctx); err != nil {
		return total, err
	}
	return total, s.Delete(ctx, "bench/plain-copy.bin")
}

// readerOnly hides WriterTo, so both phases move bytes through a buffer.
type readerOnly struct{ io.Reader }

// resetPeakRSS frees what the heap can give back and resets VmHWM to the
// current RSS; false where the kernel does not allow it.
func resetPeakRSS() bool {
	runtime.GC()
	debug.FreeOSMemory()
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
}

// sampleAnon samples RssAnon every 5ms until the returned function is
// called, which returns the highest value seen.
func sampleAnon() func() int64 {
	stop, done := make(chan struct{}), make(chan int64)
	go func() {
		peak := procStatus("RssAnon:")
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				done <- max(peak, procStatus("RssAnon:"))
				return
			case <-t.C:
				peak = max(peak, procStatus("RssAnon:"))
			}
		}
	}()
	return func() int64 { close(stop); return <-done }
}

// procStatus reads a size field (VmHWM:, VmRSS:) of /proc/self/status in
// bytes (0 where there is none).
func procStatus(field string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err == nil {
				return kb << 10
			}
		}
	}
	return 0
}

// Synth is a read-only storage of synthesized objects ("synth/N.flac"):
// each is a deterministic stream copied out of one shared 1 MiB random
// block at an object-specific phase, so reading costs a memmove and
// nothing is stored.
type Synth struct {
	block []byte
	sizes []int64
}

const synthBlock = 1 << 20

// NewSynth returns an empty Synth.
func NewSynth() *Synth {
	r := rand.New(rand.NewPCG(42, 1042))
	b := make([]byte, synthBlock)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return &Synth{block: b}
}

// Add makes an object of size bytes and returns its key. Call before use.
func (s *Synth) Add(size int64) string {
	s.sizes = append(s.sizes, size)
	return fmt.Sprintf("synth/%d.flac", len(s.sizes)-1)
}

func (s *Synth) index(key string) (int, error) {
	n, ok := strings.CutPrefix(key, "synth/")
	n, ok2 := strings.CutSuffix(n, ".flac")
	i, err := strconv.Atoi(n)
	if !ok || !ok2 || err != nil || i < 0 || i >= len(s.sizes) {
		return 0, fmt.Errorf("synth: %s: %w", key, storage.ErrNotExist)
	}
	return i, nil
}

// Stat returns the object's size.
func (s *Synth) Stat(_ context.Context, key string) (storage.Object, error) {
	i, err := s.index(key)
	if err != nil {
		return storage.Object{}, err
	}
	return storage.Object{Key: key, Size: s.sizes[i]}, nil
}

// Open streams the object from offset.
func (s *Synth) Open(_ context.Context, key string, offset int64) (io.ReadCloser, error) {
	i, err := s.index(key)
	if err != nil {
		return nil, err
	}
	return &synthReader{block: s.block, pos: offset, size: s.sizes[i], phase: int64(i) * 7919}, nil
}

type synthReader struct {
	block            []byte
	pos, size, phase int64
}

func (r *synthReader) Read(p []byte) (int, error) {
	if r.pos >= r.size {
		return 0, io.EOF
	}
	n := 0
	for len(p) > 0 && r.pos < r.size {
		at := (r.pos + r.phase) % synthBlock
		c := copy(p[:min(int64(len(p)), r.size-r.pos)], r.block[at:])
		p, n, r.pos = p[c:], n+c, r.pos+int64(c)
	}
	return n, nil
}

func (r *synthReader) Close() error { return nil }

// Routed reads "synth/" keys from Synth and everything else from (and all
// writes to) Dest.
type Routed struct {
	*Synth
	Dest storage.Storage
}

func (r *Routed) synth(key string) bool { return strings.HasPrefix(key, "synth/") }

func (r *Routed) Stat(ctx context.Context, key string) (storage.Object, error) {
	if r.synth(key) {
		return r.Synth.Stat(ctx, key)
	}
	return r.Dest.Stat(ctx, key)
}

func (r *Routed) Open(ctx context.Context, key string, offset int64) (io.ReadCloser, error) {
	if r.synth(key) {
		return r.Synth.Open(ctx, key, offset)
	}
	return r.Dest.Open(ctx, key, offset)
}

func (r *Routed) Create(ctx context.Context, key string, o storage.CreateOptions) (storage.Upload, error) {
	return r.Dest.Create(ctx, key, o)
}

func (r *Routed) AbortUploads(ctx context.Context, prefix string) (int, error) {
	return r.Dest.AbortUploads(ctx, prefix)
}

func (r *Routed) DownloadURL(ctx context.Context, key string, o storage.URLOptions) (string, error) {
	return r.Dest.DownloadURL(ctx, key, o)
}

func (r *Routed) Delete(ctx context.Context, key string) error {
	if r.synth(key) {
		return errors.New("synth objects are read-only")
	}
	return r.Dest.Delete(ctx, key)
}

func (r *Routed) String() string { return "synth + " + r.Dest.String() }
