package export

import (
	"archive/zip"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/plyr-fm/plyrtasks/storage"
	"github.com/plyr-fm/plyrtasks/store"
)

// copyBufferSize is the one buffer a running export reads tracks through.
const copyBufferSize = 256 << 10

// item is one published track as the export will handle it.
type item struct {
	track   store.Track
	key     string // object to read; "" when missing
	size    int64
	name    string // zip entry name
	missing string // why it cannot be included ("" = it can)
	substit string // why the original was replaced by the served file
}

// build streams the artist's tracks into a zip uploaded to storage and
// returns the result. ctx cancellation aborts the upload.
func (s *Service) build(ctx context.Context, j store.Job, rep *reporter) (*Result, error) {
	did := j.OwnerDID
	owner := did
	if a, err := s.o.Store.GetArtist(ctx, did); err == nil && a.Handle != "" {
		owner = a.Handle
	}
	prefix := s.o.KeyPrefix + j.ID + "/"
	key := prefix + "plyr-export-" + SafeName(owner, 100) + ".zip"

	// A previous attempt that crashed mid-upload left an unfinished
	// upload behind: discard it before starting over. Failing to is not a
	// reason to fail the export (it never becomes visible; bucket
	// lifecycle rules collect it eventually).
	if n, err := s.o.Storage.AbortUploads(ctx, prefix); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		s.log.WarnContext(ctx, "could not abort stale export uploads", "export_id", j.ID, "err", err)
	} else if n > 0 {
		s.log.InfoContext(ctx, "aborted stale export uploads", "export_id", j.ID, "count", n)
	}

	rep.update(func(p *Progress) { *p = Progress{Phase: PhaseListing, Message: "listing tracks"} })
	items, err := s.plan(ctx, did)
	if err != nil {
		return nil, err
	}
	var bytesTotal int64
	for _, it := range items {
		bytesTotal += it.size
	}
	rep.update(func(p *Progress) {
		p.TracksTotal, p.BytesTotal = len(items), bytesTotal
		p.Message = fmt.Sprintf("found %d tracks (%s)", len(items), formatBytes(bytesTotal))
	})

	u, err := s.o.Storage.Create(ctx, key, storage.CreateOptions{ContentType: "application/zip"})
	if err != nil {
		return nil, fmt.Errorf("start upload: %w", err)
	}
	completed := false
	defer func() {
		if !completed {
			if err := u.Abort(ctx); err != nil {
				s.log.WarnContext(ctx, "could not abort export upload", "export_id", j.ID, "err", err)
			}
		}
	}()

	rep.update(func(p *Progress) { p.Phase = PhaseArchiving })
	zw := zip.NewWriter(u)
	buf := make([]byte, copyBufferSize)
	var missing, substituted []Missing
	included := 0
	for i, it := range items {
		rep.update(func(p *Progress) {
			p.Message = fmt.Sprintf("adding track %d of %d: %s", i+1, len(items), it.track.Title)
		})
		if it.missing == "" {
			err := s.addEntry(ctx, zw, it, buf, rep)
			var unreadable *unreadableError
			switch {
			case errors.As(err, &unreadable):
				it.missing = unreadable.reason
				rep.update(func(p *Progress) { p.BytesDone += it.size }) // skipped bytes count as handled
			case err != nil:
				return nil, err
			default:
				included++
			}
		}
		if it.missing != "" {
			missing = append(missing, Missing{TrackID: it.track.ID, Title: it.track.Title, Reason: it.missing})
		} else if it.substit != "" {
			substituted = append(substituted, Missing{TrackID: it.track.ID, Title: it.track.Title, Reason: it.substit})
		}
		rep.update(func(p *Progress) { p.TracksDone = i + 1 })
	}
	if len(missing)+len(substituted) > 0 {
		if err := writeManifest(zw, owner, len(items), missing, substituted); err != nil {
			return nil, err
		}
	}

	rep.update(func(p *Progress) { p.Phase, p.Message = PhaseUploading, "finishing the upload" })
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("finish zip: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	obj, err := u.Complete(ctx)
	if err != nil {
		return nil, fmt.Errorf("complete upload: %w", err)
	}
	completed = true

	url, exp, err := s.downloadURL(ctx, key)
	if err != nil {
		// The zip is complete; GET /v1/exports/{id} presigns again.
		s.log.WarnContext(ctx, "could not presign export download", "export_id", j.ID, "err", err)
	}
	if missing == nil {
		missing = []Missing{}
	}
	return &Result{
		Key: key, Size: obj.Size, Tracks: included, TracksTotal: len(items),
		Missing: missing, Substituted: substituted, DownloadURL: url, URLExpiresAt: exp,
	}, nil
}

// plan lists the artist's tracks in creation order and finds each one's
// object (original when readable, else served) and size, looking up to
// ListConcurrency objects at once. Entry names are assigned in order.
func (s *Service) plan(ctx context.Context, did string) ([]item, error) {
	tracks, err := s.o.Store.ListArtistTracks(ctx, did)
	if err != nil {
		return nil, fmt.Errorf("list tracks: %w", err)
	}
	items := make([]item, len(tracks))
	sem := make(chan struct{}, s.o.ListConcurrency)
	var wg sync.WaitGroup
	for i, t := range tracks {
		items[i].track = t
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			s.locate(ctx, &items[i])
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	names := newNamer(ManifestName)
	for i := range items {
		if items[i].missing == "" {
			items[i].name = names.name(items[i].track.Title, items[i].ext())
		}
	}
	return items, nil
}

// ext is the entry's extension: the original's type when the original is
// used, else the served file's.
func (it *item) ext() string {
	if it.key != "" && it.key == it.track.OriginalKey {
		return safeExt(it.track.OriginalType, it.track.OriginalKey)
	}
	return safeExt(it.track.FileType, it.track.FileKey)
}

// locate fills it.key and it.size, or it.missing with the reason.
func (s *Service) locate(ctx context.Context, it *item) {
	t := it.track
	if t.OriginalKey != "" {
		obj, err := s.o.Storage.Stat(ctx, t.OriginalKey)
		if err == nil {
			it.key, it.size = t.OriginalKey, obj.Size
			return
		}
		it.substit = "original " + describeReadError(err)
	}
	if t.FileKey == "" {
		it.missing = "no audio file recorded"
		if it.substit != "" {
			it.missing = it.substit
		}
		it.substit = ""
		return
	}
	obj, err := s.o.Storage.Stat(ctx, t.FileKey)
	if err != nil {
		it.missing = "audio file " + describeReadError(err)
		if it.substit != "" {
			it.missing = it.substit + "; served " + it.missing
		}
		it.substit = ""
		return
	}
	it.key, it.size = t.FileKey, obj.Size
	if it.substit != "" {
		it.substit += "; the served " + safeExt(t.FileType, t.FileKey) + " file is included instead"
	}
}

func describeReadError(err error) string {
	if errors.Is(err, storage.ErrNotExist) {
		return "not found in storage"
	}
	return "could not be read: " + err.Error()
}

// unreadableError: a track's object could not be opened, before any of it
// was written. The track goes into the manifest; the export goes on.
type unreadableError struct{ reason string }

func (e *unreadableError) Error() string { return e.reason }

// addEntry writes one track as a stored (uncompressed) entry. An object
// that cannot be opened is an *unreadableError; a read that breaks midway
// (after resuming ReadAttempts times) fails the export, since a half-written
// entry cannot be taken back.
func (s *Service) addEntry(ctx context.Context, zw *zip.Writer, it item, buf []byte, rep *reporter) error {
	r := &trackReader{
		s: s, ctx: ctx, key: it.key, size: it.size,
		onRead: func(n int) { rep.update(func(p *Progress) { p.BytesDone += int64(n) }) },
	}
	if err := r.open(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &unreadableError{reason: "audio file " + describeReadError(err)}
	}
	defer r.close()
	h := &zip.FileHeader{Name: it.name, Method: zip.Store}
	if !it.track.CreatedAt.IsZero() {
		h.Modified = it.track.CreatedAt.UTC()
	}
	h.SetMode(0o644)
	w, err := zw.CreateHeader(h)
	if err != nil {
		return fmt.Errorf("zip entry for track %d: %w", it.track.ID, err)
	}
	if _, err := io.CopyBuffer(w, r, buf); err != nil {
		return fmt.Errorf("track %d (%s): %w", it.track.ID, it.key, err)
	}
	return nil
}

// writeManifest adds ManifestName listing what is not (or not as the
// original) in the zip.
func writeManifest(zw *zip.Writer, owner string, total int, missing, substituted []Missing) error {
	var b strings.Builder
	fmt.Fprintf(&b, "plyr.fm export for %s\r\n\r\n", owner)
	if len(missing) > 0 {
		fmt.Fprintf(&b, "%d of %d tracks could not be included:\r\n\r\n", len(missing), total)
		for _, m := range missing {
			fmt.Fprintf(&b, "- track %d %q: %s\r\n", m.TrackID, m.Title, m.Reason)
		}
		b.WriteString("\r\n")
	}
	if len(substituted) > 0 {
		fmt.Fprintf(&b, "%d tracks are included as their served file because the original could not be read:\r\n\r\n", len(substituted))
		for _, m := range substituted {
			fmt.Fprintf(&b, "- track %d %q: %s\r\n", m.TrackID, m.Title, m.Reason)
		}
	}
	h := &zip.FileHeader{Name: ManifestName, Method: zip.Store, Modified: time.Now().UTC()}
	h.SetMode(0o644)
	w, err := zw.CreateHeader(h)
	if err == nil {
		_, err = io.WriteString(w, b.String())
	}
	if err != nil {
		return fmt.Errorf("zip manifest: %w", err)
	}
	return nil
}

// trackReader reads one object, checking ctx on every read (local files do
// not watch a context) and resuming at the current byte when a read breaks
// — up to ReadAttempts times in all, with backoff.
type trackReader struct {
	s      *Service
	ctx    context.Context
	key    string
	size   int64 // from listing: an early EOF is a broken read, not the end
	off    int64
	rc     io.ReadCloser
	fails  int
	onRead func(n int)
}

func (r *trackReader) open() error {
	var err error
	for {
		if r.rc, err = r.s.o.Storage.Open(r.ctx, r.key, r.off); err == nil {
			return nil
		}
		r.fails++
		if errors.Is(err, storage.ErrNotExist) || r.fails >= r.s.o.ReadAttempts || r.ctx.Err() != nil {
			return err
		}
		if werr := r.backoff(); werr != nil {
			return werr
		}
	}
}

func (r *trackReader) backoff() error {
	d := 200 * time.Millisecond << (r.fails - 1)
	t := time.NewTimer(min(d, 2*time.Second))
	defer t.Stop()
	select {
	case <-r.ctx.Done():
		return r.ctx.Err()
	case <-t.C:
		return nil
	}
}

func (r *trackReader) close() {
	if r.rc != nil {
		r.rc.Close()
		r.rc = nil
	}
}

func (r *trackReader) Read(p []byte) (int, error) {
	for {
		if err := r.ctx.Err(); err != nil {
			return 0, err
		}
		n, err := r.rc.Read(p)
		r.off += int64(n)
		if n > 0 {
			r.onRead(n)
		}
		if err == io.EOF && r.off < r.size {
			err = fmt.Errorf("object ended at byte %d of %d: %w", r.off, r.size, io.ErrUnexpectedEOF)
		}
		if err == nil || err == io.EOF {
			return n, err
		}
		r.close()
		r.fails++
		if r.fails >= r.s.o.ReadAttempts || r.ctx.Err() != nil {
			return n, fmt.Errorf("read at byte %d: %w", r.off, err)
		}
		r.s.log.WarnContext(r.ctx, "track read broke; resuming", "key", r.key, "offset", r.off, "err", err)
		if err := r.backoff(); err != nil {
			return n, err
		}
		if err := r.open(); err != nil {
			return n, fmt.Errorf("resume at byte %d: %w", r.off, err)
		}
		if n > 0 {
			return n, nil
		}
	}
}

// formatBytes renders n for messages: "12.3 MB".
func formatBytes(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.1f GB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1f kB", float64(n)/1e3)
	}
	return fmt.Sprintf("%d B", n)
}
