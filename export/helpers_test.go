package export_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"hash/crc32"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/plyr-fm/plyrtasks/export"
	"github.com/plyr-fm/plyrtasks/export/audiogen"
	"github.com/plyr-fm/plyrtasks/job"
	"github.com/plyr-fm/plyrtasks/storage"
	"github.com/plyr-fm/plyrtasks/storage/storagetest"
	"github.com/plyr-fm/plyrtasks/store"
	"github.com/plyr-fm/plyrtasks/store/storetest"
	"github.com/plyr-fm/plyrtasks/tasks"
)

const artistDID = "did:plc:exportartist0000000000000"

// backend is a storage under test and a way to count unfinished uploads.
type backend struct {
	name    string
	storage storage.Storage
	pending func(t *testing.T, prefix string) int
	// fetch reads a completed export by key.
	fetch func(t *testing.T, key string) []byte
}

func fileBackend(t *testing.T) backend {
	f, err := storage.NewFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return backend{
		name:    "file",
		storage: f,
		pending: func(t *testing.T, prefix string) int {
			n := 0
			filepath.WalkDir(f.Root(), func(p string, d os.DirEntry, err error) error {
				if err == nil && !d.IsDir() && strings.Contains(d.Name(), ".upload-") {
					rel, _ := filepath.Rel(f.Root(), p)
					if strings.HasPrefix(filepath.ToSlash(rel), prefix) {
						n++
					}
				}
				return nil
			})
			return n
		},
		fetch: func(t *testing.T, key string) []byte { return readObject(t, f, key) },
	}
}

func s3Backend(t *testing.T) backend {
	fake := storagetest.NewFakeS3(t)
	s := fake.Storage(t, storage.S3Options{PartSize: storage.MinPartSize})
	return backend{
		name:    "s3",
		storage: s,
		pending: func(t *testing.T, prefix string) int {
			out, err := s.Client().ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{
				Bucket: aws.String(s.Bucket()), Prefix: aws.String(prefix),
			})
			if err != nil {
				t.Fatalf("list multipart uploads: %v", err)
			}
			return len(out.Uploads)
		},
		fetch: func(t *testing.T, key string) []byte { return readObject(t, s, key) },
	}
}

func backends(t *testing.T) []backend { return []backend{fileBackend(t), s3Backend(t)} }

func readObject(t *testing.T, s storage.Storage, key string) []byte {
	t.Helper()
	rc, err := s.Open(context.Background(), key, 0)
	if err != nil {
		t.Fatalf("open %s: %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return b
}

// wantEntry is an expected zip entry, computed from the generator, not
// from the code under test.
type wantEntry struct {
	name string
	size int64
	crc  uint32
}

// fixture is a seeded artist.
type fixture struct {
	tracks  []store.Track // in creation order
	entries []wantEntry   // expected zip entries, in order, manifest excluded
	missing []int64       // track IDs expected in the manifest
	substit []int64       // track IDs whose original is missing
	bytes   int64         // source bytes that will be archived
}

type seedTrack struct {
	title    string
	tone     audiogen.Tone // served file
	original *audiogen.Tone
	store    bool // whether the served object exists
	storeOrg bool // whether the original object exists
	want     string
}

// seed creates the artist and tracks and stores their audio. The tracks
// are inserted out of creation order (CreatedAt descending per insert) to
// prove the zip follows creation time.
func seed(t *testing.T, st store.Store, obj storage.Storage) fixture {
	t.Helper()
	ctx := context.Background()
	if err := st.UpsertArtist(ctx, store.Artist{DID: artistDID, Handle: "alice.test", DisplayName: "Alice"}); err != nil {
		t.Fatal(err)
	}
	mb := int64(1 << 20)
	tone := func(f audiogen.Format, freq float64, size int64) audiogen.Tone {
		return audiogen.Tone{Format: f, Freq: freq}.ForSize(size)
	}
	aiff := tone(audiogen.AIFF, 523.25, 4*mb)
	seeds := []seedTrack{
		{title: "Sunrise", tone: tone(audiogen.WAV, 440, 3*mb), store: true, want: "Sunrise.wav"},
		{title: "Night/Day: Live?", tone: tone(audiogen.WAV, 220, mb), store: true, want: "Night_Day_ Live_.wav"},
		{title: "Sunrise", tone: tone(audiogen.WAV, 660, 2*mb), store: true, want: "Sunrise (2).wav"},
		{title: "Lossless Take", tone: tone(audiogen.WAV, 330, mb), original: &aiff, store: true, storeOrg: true, want: "Lossless Take.aiff"},
		{title: "Gone", tone: tone(audiogen.WAV, 100, mb), store: false},
		{title: "  sunrise ", tone: tone(audiogen.WAV, 880, mb/2), store: true, want: "sunrise (3).wav"},
		{title: "CON", tone: tone(audiogen.WAV, 150, mb/4), store: true, want: "CON_.wav"},
		{title: "Half Lost", tone: tone(audiogen.WAV, 250, mb), original: &aiff, store: true, storeOrg: false, want: "Half Lost.wav"},
		{title: "../../etc/passwd", tone: tone(audiogen.WAV, 300, mb/4), store: true, want: "_.._etc_passwd.wav"},
	}
	var f fixture
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	// Insert last-created first.
	created := make([]store.Track, len(seeds))
	for i := len(seeds) - 1; i >= 0; i-- {
		s := seeds[i]
		key := "audio/" + strings.ToLower(strings.NewReplacer("/", "", " ", "", ".", "", ":", "", "?", "").Replace(s.title)) + "-" + string(rune('a'+i)) + ".wav"
		tr := store.Track{
			ArtistDID: artistDID, Title: s.title, FileKey: key, FileType: "wav",
			CreatedAt: base.Add(time.Duration(i) * time.Hour),
		}
		if s.original != nil {
			tr.OriginalKey, tr.OriginalType = "originals/"+string(rune('a'+i))+".aiff", "aiff"
		}
		if s.store {
			if _, err := storage.Put(ctx, obj, tr.FileKey, s.tone.Reader(), storage.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		if s.storeOrg {
			if _, err := storage.Put(ctx, obj, tr.OriginalKey, s.original.Reader(), storage.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		var err error
		if created[i], err = st.CreateTrack(ctx, tr); err != nil {
			t.Fatal(err)
		}
	}
	for i, s := range seeds {
		f.tracks = append(f.tracks, created[i])
		switch {
		case !s.store:
			f.missing = append(f.missing, created[i].ID)
			continue
		case s.original != nil && !s.storeOrg:
			f.substit = append(f.substit, created[i].ID)
		}
		src := s.tone
		if s.original != nil && s.storeOrg {
			src = *s.original
		}
		h := crc32.NewIEEE()
		n, _ := io.Copy(h, src.Reader())
		f.entries = append(f.entries, wantEntry{name: s.want, size: n, crc: h.Sum32()})
		f.bytes += n
	}
	return f
}

// env is a service over a store and storage, with an enqueuer that
// records what it enqueued.
type env struct {
	store   store.Store
	backend backend
	svc     *export.Service
	enq     *recordingEnqueuer
}

type envOptions struct {
	store    store.Store
	storage  storage.Storage // wraps backend.storage when set
	interval time.Duration
	cancel   func(ctx context.Context, taskID string) error
}

func newEnv(t *testing.T, b backend, o envOptions) *env {
	t.Helper()
	if o.store == nil {
		o.store = storetest.SQLite(t)
	}
	obj := b.storage
	if o.storage != nil {
		obj = o.storage
	}
	if o.interval == 0 {
		o.interval = 20 * time.Millisecond
	}
	enq := &recordingEnqueuer{}
	svc, err := export.New(export.Options{
		Store: o.store, Storage: obj, Enqueuer: enq, CancelTask: o.cancel,
		URLExpiry: time.Hour, ProgressInterval: o.interval,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &env{store: o.store, backend: b, svc: svc, enq: enq}
}

type recordingEnqueuer struct {
	mu   sync.Mutex
	args []tasks.MediaExportArgs
	err  error
}

func (e *recordingEnqueuer) EnqueueExport(ctx context.Context, a tasks.MediaExportArgs) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.err != nil {
		return "", e.err
	}
	e.args = append(e.args, a)
	return "task-" + a.ExportID, nil
}

func (e *recordingEnqueuer) calls() []tasks.MediaExportArgs {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]tasks.MediaExportArgs(nil), e.args...)
}

// results records every task result written, like asynq's ResultWriter.
type results struct {
	mu     sync.Mutex
	writes [][]byte
	at     []time.Time
}

func (r *results) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writes = append(r.writes, append([]byte(nil), p...))
	r.at = append(r.at, time.Now())
	return len(p), nil
}

func (r *results) states(t *testing.T) []export.State {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]export.State, len(r.writes))
	for i, w := range r.writes {
		if err := json.Unmarshal(w, &out[i]); err != nil {
			t.Fatalf("task result %d is not a State: %v", i, err)
		}
	}
	return out
}

// task returns a job.Task for attempt (0-based) of maxRetry.
func task(id string, attempt, maxRetry int, res *results) *job.Task {
	t := &job.Task{Kind: export.Kind, ID: id, Queue: tasks.QueueBulk, Attempt: attempt, MaxRetry: maxRetry}
	if res != nil {
		t.Result = res
	}
	return t
}

// request creates an export and returns its args as enqueued.
func (e *env) request(t *testing.T) (store.Job, tasks.MediaExportArgs) {
	t.Helper()
	j, created, err := e.svc.Request(context.Background(), artistDID)
	if err != nil || !created {
		t.Fatalf("Request = %+v, created=%v, %v", j, created, err)
	}
	calls := e.enq.calls()
	return j, calls[len(calls)-1]
}

func (e *env) job(t *testing.T, id string) store.Job {
	t.Helper()
	j, err := e.store.GetJob(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// checkZip verifies the archive entry by entry: names and order, sizes,
// CRCs, Store method, and the manifest's lines.
func checkZip(t *testing.T, data []byte, f fixture) {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatalf("not a valid zip (%d bytes): %v", len(data), err)
	}
	want := f.entries
	hasManifest := len(f.missing)+len(f.substit) > 0
	if n := len(want) + btoi(hasManifest); len(zr.File) != n {
		names := []string{}
		for _, zf := range zr.File {
			names = append(names, zf.Name)
		}
		t.Fatalf("zip has %d entries %q, want %d", len(zr.File), names, n)
	}
	for i, w := range want {
		zf := zr.File[i]
		if zf.Name != w.name || int64(zf.UncompressedSize64) != w.size || zf.CRC32 != w.crc || zf.Method != zip.Store {
			t.Errorf("entry %d = %q size %d crc %08x method %d; want %q size %d crc %08x method Store",
				i, zf.Name, zf.UncompressedSize64, zf.CRC32, zf.Method, w.name, w.size, w.crc)
		}
		if strings.ContainsAny(zf.Name, `/\:*?"<>|`) || strings.HasPrefix(zf.Name, ".") {
			t.Errorf("entry %q is not OS-safe", zf.Name)
		}
		// Read it back: archive/zip checks the CRC against the data.
		rc, err := zf.Open()
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil || n != w.size {
			t.Errorf("entry %q: read %d bytes, %v; want %d and a matching CRC", zf.Name, n, err, w.size)
		}
	}
	if !hasManifest {
		return
	}
	mf := zr.File[len(zr.File)-1]
	if mf.Name != export.ManifestName {
		t.Fatalf("last entry %q, want %s", mf.Name, export.ManifestName)
	}
	rc, err := mf.Open()
	if err != nil {
		t.Fatal(err)
	}
	text, _ := io.ReadAll(rc)
	rc.Close()
	for _, tr := range f.tracks {
		line := "- track " + itoa(tr.ID) + " " + quote(tr.Title) + ": "
		listed := strings.Contains(string(text), line)
		if want := contains(f.missing, tr.ID) || contains(f.substit, tr.ID); listed != want {
			t.Errorf("manifest lists track %d (%q): %v, want %v\n%s", tr.ID, tr.Title, listed, want, text)
		}
	}
}

// httpGet fetches a URL.
func httpGet(t *testing.T, url string) []byte {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// faulty wraps a Storage: reads of FailKey break after FailAfter bytes the
// first FailTimes opens (-1: always); every Read sleeps Delay and returns
// at most ReadSize bytes (0 = unlimited).
type faulty struct {
	storage.Storage
	FailKey   string
	FailAfter int64
	FailTimes int
	Delay     time.Duration
	ReadSize  int

	mu    sync.Mutex
	opens map[string][]int64 // offsets each key was opened at
}

var errInjected = errors.New("injected read failure")

func (f *faulty) Open(ctx context.Context, key string, offset int64) (io.ReadCloser, error) {
	rc, err := f.Storage.Open(ctx, key, offset)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	if f.opens == nil {
		f.opens = map[string][]int64{}
	}
	f.opens[key] = append(f.opens[key], offset)
	nth := len(f.opens[key])
	f.mu.Unlock()
	fr := &faultyReader{rc: rc, f: f, pos: offset, failAt: -1}
	if key == f.FailKey && (f.FailTimes < 0 || nth <= f.FailTimes) {
		fr.failAt = f.FailAfter
	}
	return fr, nil
}

func (f *faulty) openedAt(key string) []int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]int64(nil), f.opens[key]...)
}

type faultyReader struct {
	rc     io.ReadCloser
	f      *faulty
	pos    int64 // absolute offset in the object
	failAt int64 // absolute offset where reads break; -1 never
}

func (r *faultyReader) Read(p []byte) (int, error) {
	if r.f.Delay > 0 {
		time.Sleep(r.f.Delay)
	}
	if r.f.ReadSize > 0 && len(p) > r.f.ReadSize {
		p = p[:r.f.ReadSize]
	}
	if r.failAt >= 0 {
		if r.pos >= r.failAt {
			return 0, errInjected
		}
		if rest := r.failAt - r.pos; int64(len(p)) > rest {
			p = p[:rest]
		}
	}
	n, err := r.rc.Read(p)
	r.pos += int64(n)
	return n, err
}

func (r *faultyReader) Close() error { return r.rc.Close() }

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func contains(ids []int64, id int64) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func quote(s string) string { return strconv.Quote(s) }

// waitJob polls the job row until cond holds (10s at most).
func (e *env) waitJob(t *testing.T, id string, cond func(store.Job) bool) store.Job {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		j := e.job(t, id)
		if cond(j) {
			return j
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s never reached the condition; last: status %s phase %s progress %.1f message %q", id, j.Status, j.Phase, j.Progress, j.Message)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
