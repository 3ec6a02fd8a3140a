// Package storage is plyrtasks' object storage: where track audio is read
// from and where media exports are written, behind one small interface with
// two backends — a local directory (file://, the embedded default) and any
// S3-compatible service (s3://, e.g. Cloudflare R2).
//
// Writes are streaming uploads that become visible all at once: an Upload
// is written to while it is produced and the object appears under its key
// only when Complete succeeds (an S3 multipart upload, or a temp file
// renamed into place). A crash or an Abort never leaves a truncated object
// under the final key, and AbortUploads cleans up what a crashed writer
// left behind.
package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/plyr-fm/plyrtasks/config"
)

// ErrNotExist is returned (wrapped) when an object does not exist. It is
// fs.ErrNotExist, so errors.Is(err, fs.ErrNotExist) works too.
var ErrNotExist = fs.ErrNotExist

// Storage reads and writes objects by key. Keys are slash-separated paths
// ("audio/abc.mp3") checked by ValidKey. Implementations are safe for
// concurrent use; an Upload is not (one writer goroutine).
type Storage interface {
	// Stat returns an object's size; ErrNotExist when it is missing.
	Stat(ctx context.Context, key string) (Object, error)
	// Open reads an object from byte offset (0 = the start); ErrNotExist
	// when it is missing.
	Open(ctx context.Context, key string, offset int64) (io.ReadCloser, error)
	// Create starts a streaming upload to key. ctx bounds the whole upload:
	// cancelling it fails the next Write and stops background part uploads.
	Create(ctx context.Context, key string, opts CreateOptions) (Upload, error)
	// AbortUploads discards every unfinished upload whose key starts with
	// prefix (left by a crashed writer) and returns how many it discarded.
	AbortUploads(ctx context.Context, prefix string) (int, error)
	// DownloadURL returns where a user can fetch key: a presigned GET URL
	// valid for opts.Expiry (S3) or an absolute file path (file).
	DownloadURL(ctx context.Context, key string, opts URLOptions) (string, error)
	// Delete removes an object; deleting a missing object is not an error.
	Delete(ctx context.Context, key string) error
	// String describes the backend for logs (no secrets).
	String() string
}

// Upload is an object being written. Write streams bytes; Complete makes
// the object visible under its key atomically; Abort discards it. After
// Complete or Abort, Abort is a no-op, so `defer u.Abort(ctx)` is safe.
type Upload interface {
	io.Writer
	// Complete finishes the upload. On error the upload is aborted.
	Complete(ctx context.Context) (Object, error)
	// Abort discards the upload. It runs even when ctx is already
	// cancelled (an abandoned upload must not linger), bounded by
	// AbortTimeout.
	Abort(ctx context.Context) error
}

// AbortTimeout bounds Abort's cleanup, which runs detached from the
// caller's (possibly cancelled) context.
const AbortTimeout = 30 * time.Second

// Object describes a stored object.
type Object struct {
	Key  string
	Size int64
}

// CreateOptions tune an upload.
type CreateOptions struct {
	// ContentType is stored with the object (S3). Default
	// application/octet-stream.
	ContentType string
}

// URLOptions tune DownloadURL.
type URLOptions struct {
	// Expiry is how long a presigned URL stays valid. Default 24h.
	Expiry time.Duration
	// Filename, when set, asks the browser to save the download under this
	// name (S3 response Content-Disposition).
	Filename string
}

// DefaultURLExpiry is URLOptions.Expiry's default.
const DefaultURLExpiry = 24 * time.Hour

// MaxKeyLength bounds a key in bytes (S3's limit).
const MaxKeyLength = 1024

// ValidKey reports why key cannot name an object, or nil: it must be a
// non-empty, clean, relative slash path (no leading or trailing slash, no
// empty, . or .. elements), valid UTF-8 without control characters or
// backslashes, at most MaxKeyLength bytes.
func ValidKey(key string) error {
	switch {
	case key == "":
		return errors.New("storage: empty key")
	case len(key) > MaxKeyLength:
		return fmt.Errorf("storage: key is %d bytes, limit %d", len(key), MaxKeyLength)
	case !utf8.ValidString(key):
		return fmt.Errorf("storage: key %q is not valid UTF-8", key)
	case strings.ContainsRune(key, '\\'):
		return fmt.Errorf("storage: key %q contains a backslash", key)
	case strings.IndexFunc(key, unicode.IsControl) >= 0:
		return fmt.Errorf("storage: key %q contains a control character", key)
	case !fs.ValidPath(key) || key == ".":
		return fmt.Errorf("storage: key %q must be a clean relative path (no leading /, no empty, . or .. elements)", key)
	}
	return nil
}

// Put stores r under key as one upload (aborted on any error).
func Put(ctx context.Context, s Storage, key string, r io.Reader, opts CreateOptions) (Object, error) {
	u, err := s.Create(ctx, key, opts)
	if err != nil {
		return Object{}, err
	}
	if _, err := io.Copy(u, r); err != nil {
		_ = u.Abort(ctx)
		return Object{}, fmt.Errorf("storage: put %s: %w", key, err)
	}
	return u.Complete(ctx)
}

// FromConfig returns the Storage that STORAGE_URL (resolved against dataDir)
// names, after validating cfg: a *File for file://, an *S3 for s3://.
func FromConfig(ctx context.Context, cfg config.Storage, dataDir string) (Storage, error) {
	if err := cfg.Validate(dataDir); err != nil {
		return nil, err
	}
	loc, err := config.ParseStorageURL(cfg.ResolvedURL(dataDir))
	if err != nil {
		return nil, err
	}
	switch loc.Scheme {
	case "file":
		return NewFile(loc.Dir)
	case "s3":
		return NewS3(ctx, S3Options{
			Bucket:          loc.Bucket,
			Prefix:          loc.Prefix,
			Endpoint:        cfg.S3Endpoint,
			Region:          cfg.S3Region,
			AccessKeyID:     cfg.S3AccessKeyID,
			SecretAccessKey: cfg.S3SecretAccessKey,
			ForcePathStyle:  cfg.S3ForcePathStyle,
			PartSize:        int64(cfg.ExportPartSize),
		})
	}
	return nil, fmt.Errorf("STORAGE_URL: unsupported scheme %q", loc.Scheme)
}

// detached returns a context for cleanup that must run even when ctx was
// cancelled (aborting an upload), bounded by AbortTimeout.
func detached(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), AbortTimeout)
}
