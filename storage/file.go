package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// File stores objects as files under a root directory (file:// URLs).
//
// An upload writes to a hidden temp file in the object's directory
// (".{name}.upload-{random}") and renames it over the key on Complete, so a
// reader never sees a partial object and a crash leaves only a temp file,
// which AbortUploads removes. Path elements starting with "." are therefore
// reserved and refused as keys.
type File struct {
	root string
}

// uploadMarker separates an object's name from the random suffix in the
// name of its in-progress temp file.
const uploadMarker = ".upload-"

// NewFile returns a File rooted at dir (made absolute, created 0750 when
// missing).
func NewFile(dir string) (*File, error) {
	if dir == "" {
		return nil, errors.New("storage: file root directory is empty")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("storage: file root %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o750); err != nil {
		return nil, fmt.Errorf("storage: create %s: %w", abs, err)
	}
	return &File{root: abs}, nil
}

// Root is the absolute directory objects live under.
func (f *File) Root() string { return f.root }

func (f *File) String() string { return "file://" + filepath.ToSlash(f.root) }

// path maps a key to its file, refusing keys that are invalid or that name
// a reserved (dot-prefixed) element.
func (f *File) path(key string) (string, error) {
	if err := ValidKey(key); err != nil {
		return "", err
	}
	for _, el := range strings.Split(key, "/") {
		if strings.HasPrefix(el, ".") {
			return "", fmt.Errorf("storage: key %q: elements starting with '.' are reserved for uploads in progress", key)
		}
	}
	return filepath.Join(f.root, filepath.FromSlash(key)), nil
}

func (f *File) Stat(ctx context.Context, key string) (Object, error) {
	p, err := f.path(key)
	if err != nil {
		return Object{}, err
	}
	fi, err := os.Stat(p)
	if err != nil {
		return Object{}, fmt.Errorf("storage: stat %s: %w", key, err)
	}
	if !fi.Mode().IsRegular() {
		return Object{}, fmt.Errorf("storage: stat %s: not a regular file: %w", key, ErrNotExist)
	}
	return Object{Key: key, Size: fi.Size()}, nil
}

func (f *File) Open(ctx context.Context, key string, offset int64) (io.ReadCloser, error) {
	p, err := f.path(key)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	fh, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("storage: open %s: %w", key, err)
	}
	if fi, err := fh.Stat(); err != nil || !fi.Mode().IsRegular() {
		fh.Close()
		return nil, fmt.Errorf("storage: open %s: not a regular file: %w", key, ErrNotExist)
	}
	if offset > 0 {
		if _, err := fh.Seek(offset, io.SeekStart); err != nil {
			fh.Close()
			return nil, fmt.Errorf("storage: open %s at %d: %w", key, offset, err)
		}
	}
	return fh, nil
}

func (f *File) Create(ctx context.Context, key string, _ CreateOptions) (Upload, error) {
	p, err := f.path(key)
	if err != nil {
		return nil, err
	}
	dir, name := filepath.Split(p)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("storage: create %s: %w", key, err)
	}
	tmp, err := os.CreateTemp(dir, "."+name+uploadMarker+"*")
	if err != nil {
		return nil, fmt.Errorf("storage: create %s: %w", key, err)
	}
	return &fileUpload{ctx: ctx, key: key, path: p, tmp: tmp}, nil
}

func (f *File) AbortUploads(ctx context.Context, prefix string) (int, error) {
	// Walk the deepest directory the prefix names completely; temp files
	// below it whose object key has the prefix are leftovers.
	dir := f.root
	if i := strings.LastIndex(prefix, "/"); i > 0 {
		d, err := f.path(prefix[:i])
		if err != nil {
			return 0, err
		}
		dir = d
	}
	n := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() || !strings.HasPrefix(d.Name(), ".") {
			return nil
		}
		name, _, ok := strings.Cut(d.Name()[1:], uploadMarker)
		if !ok {
			return nil
		}
		rel, err := filepath.Rel(f.root, filepath.Join(filepath.Dir(p), name))
		if err != nil || !strings.HasPrefix(filepath.ToSlash(rel), prefix) {
			return nil
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		n++
		return nil
	})
	if err != nil {
		return n, fmt.Errorf("storage: abort uploads under %q: %w", prefix, err)
	}
	return n, nil
}

func (f *File) DownloadURL(ctx context.Context, key string, _ URLOptions) (string, error) {
	p, err := f.path(key)
	if err != nil {
		return "", err
	}
	return p, nil
}

func (f *File) Delete(ctx context.Context, key string) error {
	p, err := f.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("storage: delete %s: %w", key, err)
	}
	return nil
}

// fileUpload writes a temp file and renames it into place on Complete.
type fileUpload struct {
	ctx  context.Context
	key  string
	path string
	tmp  *os.File
	size int64
	done bool // completed or aborted
	err  error
}

func (u *fileUpload) Write(p []byte) (int, error) {
	if u.done {
		return 0, fmt.Errorf("storage: write %s: upload already finished", u.key)
	}
	if u.err != nil {
		return 0, u.err
	}
	if err := u.ctx.Err(); err != nil {
		u.err = fmt.Errorf("storage: write %s: %w", u.key, err)
		return 0, u.err
	}
	n, err := u.tmp.Write(p)
	u.size += int64(n)
	if err != nil {
		u.err = fmt.Errorf("storage: write %s: %w", u.key, err)
	}
	return n, u.err
}

func (u *fileUpload) Complete(ctx context.Context) (Object, error) {
	if u.done {
		return Object{}, fmt.Errorf("storage: complete %s: upload already finished", u.key)
	}
	err := u.err
	if err == nil {
		err = ctx.Err()
	}
	if err == nil {
		err = u.tmp.Sync() // the rename must not publish data still in the page cache only
	}
	if cerr := u.tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(u.tmp.Name(), u.path)
	}
	if err != nil {
		os.Remove(u.tmp.Name())
		u.done = true
		return Object{}, fmt.Errorf("storage: complete %s: %w", u.key, err)
	}
	u.done = true
	syncDir(filepath.Dir(u.path))
	return Object{Key: u.key, Size: u.size}, nil
}

func (u *fileUpload) Abort(context.Context) error {
	if u.done {
		return nil
	}
	u.done = true
	u.tmp.Close()
	if err := os.Remove(u.tmp.Name()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("storage: abort %s: %w", u.key, err)
	}
	return nil
}

// syncDir makes a rename durable; best effort (not every OS supports it).
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
