package storage

import (
	"errors"
	"io"
	"sync"
)

// Part buffers are allocated outside the Go heap where the OS allows
// (partbuf_mmap.go): two long-lived 16 MiB buffers on the heap would double
// the garbage collector's heap goal, letting the SDK's per-request garbage
// pile up to another 32 MiB before a collection. Off the heap, the goal
// follows the small live heap and resident memory stays at about the two
// buffers plus the program.

// partBody is an UploadPart request body over a part buffer. Once released
// it refuses to read, so a transport goroutine still draining the request
// after UploadPart returned can never touch a buffer that was reused or
// unmapped.
type partBody struct {
	mu     sync.Mutex
	data   []byte
	off    int64
	closed bool
}

var errPartReleased = errors.New("storage: part buffer released")

func (b *partBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, errPartReleased
	}
	if b.off >= int64(len(b.data)) {
		return 0, io.EOF
	}
	n := copy(p, b.data[b.off:])
	b.off += int64(n)
	return n, nil
}

func (b *partBody) Seek(offset int64, whence int) (int64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += b.off
	case io.SeekEnd:
		offset += int64(len(b.data))
	default:
		return 0, errors.New("storage: bad whence")
	}
	if offset < 0 {
		return 0, errors.New("storage: negative position")
	}
	b.off = offset
	return offset, nil
}

// release makes every later Read fail; it waits for a Read in progress.
func (b *partBody) release() {
	b.mu.Lock()
	b.closed, b.data = true, nil
	b.mu.Unlock()
}
