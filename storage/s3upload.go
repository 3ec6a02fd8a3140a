package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// partBuffers is how many part buffers one upload may hold: one being
// filled by Write while the other is uploaded.
const partBuffers = 2

// s3Upload is a multipart upload fed by Write. Write fills a part buffer;
// a full buffer goes to the sender goroutine, which uploads parts one at a
// time and hands each buffer back. With partBuffers buffers, Write blocks
// while both are busy: memory is bounded and the producer is paced by the
// network.
type s3Upload struct {
	s        *S3
	key      string // caller's key
	fullKey  string
	uploadID string

	ctx    context.Context // bounds part uploads; cancelled on Abort
	cancel context.CancelFunc

	buf   []byte      // part being filled (nil between parts)
	frees []func()    // unmap each buffer made so far (at most partBuffers)
	free  chan []byte // buffers handed back by the sender
	parts chan part   // full parts to the sender
	sent  int32       // part numbers used so far
	size  int64

	wg       sync.WaitGroup
	failed   chan struct{} // closed when the sender stops on an error
	mu       sync.Mutex
	err      error // first sender error (guarded by mu)
	done     []types.CompletedPart
	finished bool // Complete or Abort called (writer goroutine only)
	closed   bool // parts channel closed
}

type part struct {
	num  int32
	data []byte
}

func newS3Upload(ctx context.Context, s *S3, key, fullKey, uploadID string) *s3Upload {
	ctx, cancel := context.WithCancel(ctx)
	u := &s3Upload{
		s: s, key: key, fullKey: fullKey, uploadID: uploadID,
		ctx: ctx, cancel: cancel,
		free:   make(chan []byte, partBuffers),
		parts:  make(chan part),
		failed: make(chan struct{}),
	}
	u.wg.Add(1)
	go u.send()
	return u
}

// send uploads parts in order until the parts channel closes or one fails.
func (u *s3Upload) send() {
	defer u.wg.Done()
	for p := range u.parts {
		body := &partBody{data: p.data}
		out, err := u.s.client.UploadPart(u.ctx, &s3.UploadPartInput{
			Bucket:        &u.s.bucket,
			Key:           &u.fullKey,
			UploadId:      &u.uploadID,
			PartNumber:    aws.Int32(p.num),
			ContentLength: aws.Int64(int64(len(p.data))),
			Body:          body,
		})
		body.release()
		if err != nil {
			u.fail(fmt.Errorf("storage: upload part %d of %s: %w", p.num, u.key, err))
			// Drain so a Write blocked on sending returns via u.failed
			// rather than hanging; the parts are discarded.
			for range u.parts {
			}
			return
		}
		u.mu.Lock()
		u.done = append(u.done, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(p.num)})
		u.mu.Unlock()
		u.free <- p.data[:0]
	}
}

func (u *s3Upload) fail(err error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.err == nil {
		u.err = err
		close(u.failed)
	}
}

func (u *s3Upload) failure() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.err
}

func (u *s3Upload) Write(p []byte) (int, error) {
	if u.finished {
		return 0, fmt.Errorf("storage: write %s: upload already finished", u.key)
	}
	n := 0
	for len(p) > 0 {
		if err := u.failure(); err != nil {
			return n, err
		}
		if u.buf == nil {
			if err := u.takeBuffer(); err != nil {
				return n, err
			}
		}
		c := copy(u.buf[len(u.buf):cap(u.buf)], p)
		u.buf = u.buf[:len(u.buf)+c]
		p = p[c:]
		n += c
		u.size += int64(c)
		if int64(len(u.buf)) == u.s.partSize {
			if err := u.flush(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// takeBuffer makes a new buffer while fewer than partBuffers exist, else
// waits for the sender to hand one back.
func (u *s3Upload) takeBuffer() error {
	select {
	case b := <-u.free:
		u.buf = b
		return nil
	default:
	}
	if len(u.frees) < partBuffers {
		b, free := allocPart(int(u.s.partSize))
		u.frees = append(u.frees, free)
		u.buf = b[:0]
		return nil
	}
	select {
	case b := <-u.free:
		u.buf = b
		return nil
	case <-u.failed:
		return u.failure()
	case <-u.ctx.Done():
		return fmt.Errorf("storage: write %s: %w", u.key, context.Cause(u.ctx))
	}
}

// flush hands the current buffer to the sender as the next part.
func (u *s3Upload) flush() error {
	if u.sent >= MaxParts {
		return fmt.Errorf("storage: upload %s: more than %d parts of %d bytes; raise the part size (EXPORT_PART_SIZE)", u.key, MaxParts, u.s.partSize)
	}
	u.sent++
	select {
	case u.parts <- part{num: u.sent, data: u.buf}:
		u.buf = nil
		return nil
	case <-u.failed:
		return u.failure()
	case <-u.ctx.Done():
		return fmt.Errorf("storage: write %s: %w", u.key, context.Cause(u.ctx))
	}
}

// stop closes the parts channel, waits for the sender to finish and frees
// the part buffers.
func (u *s3Upload) stop() {
	if !u.closed {
		u.closed = true
		close(u.parts)
	}
	u.wg.Wait()
	u.buf = nil
	for _, free := range u.frees {
		free()
	}
	u.frees = nil
}

func (u *s3Upload) Complete(ctx context.Context) (Object, error) {
	if u.finished {
		return Object{}, fmt.Errorf("storage: complete %s: upload already finished", u.key)
	}
	defer u.cancel()
	err := u.failure()
	// The last part may be short. An upload of no bytes at all would need
	// one empty part, which some servers refuse: it becomes an empty
	// PutObject instead.
	if err == nil && len(u.buf) > 0 {
		err = u.flush()
	}
	u.stop()
	if err == nil {
		err = u.failure()
	}
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		u.abort(ctx)
		return Object{}, fmt.Errorf("storage: complete %s: %w", u.key, err)
	}
	u.finished = true
	if u.sent == 0 {
		u.abortMultipart(ctx)
		if _, err := u.s.client.PutObject(ctx, &s3.PutObjectInput{
			Bucket: &u.s.bucket, Key: &u.fullKey, Body: bytes.NewReader(nil), ContentLength: aws.Int64(0),
		}); err != nil {
			return Object{}, u.s.wrap("put empty", u.key, err)
		}
		return Object{Key: u.key}, nil
	}
	u.mu.Lock()
	parts := append([]types.CompletedPart(nil), u.done...)
	u.mu.Unlock()
	if _, err := u.s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: &u.s.bucket, Key: &u.fullKey, UploadId: &u.uploadID,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	}); err != nil {
		u.abortMultipart(ctx)
		return Object{}, u.s.wrap("complete upload", u.key, err)
	}
	return Object{Key: u.key, Size: u.size}, nil
}

func (u *s3Upload) Abort(ctx context.Context) error {
	if u.finished {
		return nil
	}
	return u.abort(ctx)
}

func (u *s3Upload) abort(ctx context.Context) error {
	u.finished = true
	u.cancel() // stops an in-flight part upload
	u.stop()
	return u.abortMultipart(ctx)
}

// abortMultipart tells the service to discard the upload's parts, even
// when ctx is cancelled.
func (u *s3Upload) abortMultipart(ctx context.Context) error {
	actx, cancel := detached(ctx)
	defer cancel()
	_, err := u.s.client.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{
		Bucket: &u.s.bucket, Key: &u.fullKey, UploadId: &u.uploadID,
	})
	var nsu *types.NoSuchUpload
	if err != nil && !errors.As(err, &nsu) {
		return u.s.wrap("abort upload", u.key, err)
	}
	return nil
}
