package storage_test

import (
	"bytes"
	"context"
	"errors"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/plyr-fm/plyrtasks/config"
	"github.com/plyr-fm/plyrtasks/storage"
	"github.com/plyr-fm/plyrtasks/storage/s3sink"
	"github.com/plyr-fm/plyrtasks/storage/storagetest"
)

const partSize = storage.MinPartSize

// backend is a Storage under test plus a way to see unfinished uploads.
type backend struct {
	name string
	s    storage.Storage
	// pending lists unfinished uploads under prefix as the server sees them.
	pending func(t *testing.T, prefix string) int
}

func backends(t *testing.T) []backend {
	t.Helper()
	f, err := storage.NewFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	fake := storagetest.NewFakeS3(t)
	s3s := fake.Storage(t, storage.S3Options{PartSize: partSize})
	return []backend{
		{"file", f, func(t *testing.T, prefix string) int {
			// Temp files are ".{name}.upload-{random}" next to the key.
			n := 0
			filepath.WalkDir(f.Root(), func(p string, d os.DirEntry, err error) error {
				if err != nil || d.IsDir() || !strings.HasPrefix(d.Name(), ".") {
					return nil
				}
				name, _, ok := strings.Cut(d.Name()[1:], ".upload-")
				rel, _ := filepath.Rel(f.Root(), filepath.Join(filepath.Dir(p), name))
				if ok && strings.HasPrefix(filepath.ToSlash(rel), prefix) {
					n++
				}
				return nil
			})
			return n
		}},
		{"s3", s3s, func(t *testing.T, prefix string) int {
			out, err := s3s.Client().ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{
				Bucket: aws.String(s3s.Bucket()), Prefix: aws.String(prefix),
			})
			if err != nil {
				t.Fatalf("list multipart uploads: %v", err)
			}
			return len(out.Uploads)
		}},
	}
}

// randomBytes returns n deterministic pseudo-random bytes.
func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

func readAll(t *testing.T, s storage.Storage, key string, offset int64) []byte {
	t.Helper()
	rc, err := s.Open(context.Background(), key, offset)
	if err != nil {
		t.Fatalf("open %s at %d: %v", key, offset, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return b
}

func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	// Two full parts and a short one, so S3 uses three parts.
	data := randomBytes(2*partSize+12345, 1)
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			obj, err := storage.Put(ctx, b.s, "audio/a.flac", bytes.NewReader(data), storage.CreateOptions{ContentType: "audio/flac"})
			if err != nil {
				t.Fatal(err)
			}
			if obj.Size != int64(len(data)) || obj.Key != "audio/a.flac" {
				t.Fatalf("Put = %+v, want size %d", obj, len(data))
			}
			st, err := b.s.Stat(ctx, "audio/a.flac")
			if err != nil || st.Size != int64(len(data)) {
				t.Fatalf("Stat = %+v, %v; want size %d", st, err, len(data))
			}
			if got := readAll(t, b.s, "audio/a.flac", 0); !bytes.Equal(got, data) {
				t.Fatalf("read back %d bytes, differ from the %d written", len(got), len(data))
			}
			off := int64(partSize + 7)
			if got := readAll(t, b.s, "audio/a.flac", off); !bytes.Equal(got, data[off:]) {
				t.Fatalf("read from offset %d: %d bytes, want %d matching", off, len(got), len(data)-int(off))
			}
			if err := b.s.Delete(ctx, "audio/a.flac"); err != nil {
				t.Fatal(err)
			}
			if err := b.s.Delete(ctx, "audio/a.flac"); err != nil {
				t.Fatalf("deleting a missing object: %v, want nil", err)
			}
			for op, err := range map[string]error{
				"stat": func() error { _, err := b.s.Stat(ctx, "audio/a.flac"); return err }(),
				"open": func() error { _, err := b.s.Open(ctx, "audio/a.flac", 0); return err }(),
			} {
				if !errors.Is(err, storage.ErrNotExist) {
					t.Errorf("%s of a deleted object: %v, want ErrNotExist", op, err)
				}
			}
		})
	}
}

func TestUploadAppearsOnlyOnComplete(t *testing.T) {
	ctx := context.Background()
	old := randomBytes(1000, 2)
	data := randomBytes(partSize+100, 3)
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			key := "exports/x/out.zip"
			if _, err := storage.Put(ctx, b.s, key, bytes.NewReader(old), storage.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			u, err := b.s.Create(ctx, key, storage.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := u.Write(data); err != nil {
				t.Fatal(err)
			}
			// Mid-upload, readers still see the previous complete object.
			if got := readAll(t, b.s, key, 0); !bytes.Equal(got, old) {
				t.Fatalf("mid-upload read %d bytes, want the old %d", len(got), len(old))
			}
			obj, err := u.Complete(ctx)
			if err != nil || obj.Size != int64(len(data)) {
				t.Fatalf("Complete = %+v, %v", obj, err)
			}
			if got := readAll(t, b.s, key, 0); !bytes.Equal(got, data) {
				t.Fatalf("after Complete read %d bytes, want the new %d", len(got), len(data))
			}
			if err := u.Abort(ctx); err != nil {
				t.Fatalf("Abort after Complete = %v, want nil (no-op)", err)
			}
			if got := readAll(t, b.s, key, 0); !bytes.Equal(got, data) {
				t.Fatal("Abort after Complete removed the object")
			}
			if _, err := u.Write([]byte("x")); err == nil {
				t.Fatal("Write after Complete succeeded")
			}
			if n := b.pending(t, "exports/"); n != 0 {
				t.Fatalf("%d uploads left open after Complete", n)
			}
		})
	}
}

func TestAbort(t *testing.T) {
	data := randomBytes(partSize*2+1, 4)
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			for _, tc := range []struct {
				name   string
				cancel bool // cancel the upload's context before aborting
			}{{"explicit", false}, {"after cancel", true}} {
				t.Run(tc.name, func(t *testing.T) {
					ctx, cancel := context.WithCancel(context.Background())
					defer cancel()
					key := "exports/abort/" + strings.ReplaceAll(tc.name, " ", "-") + ".zip"
					u, err := b.s.Create(ctx, key, storage.CreateOptions{})
					if err != nil {
						t.Fatal(err)
					}
					if _, err := u.Write(data); err != nil {
						t.Fatal(err)
					}
					if tc.cancel {
						cancel()
						if _, err := u.Write(data[:partSize]); !errors.Is(err, context.Canceled) {
							t.Fatalf("Write after cancel = %v, want context.Canceled", err)
						}
					}
					if n := b.pending(t, key); n != 1 {
						t.Fatalf("%d uploads open before Abort, want 1", n)
					}
					if err := u.Abort(ctx); err != nil {
						t.Fatalf("Abort: %v", err)
					}
					if err := u.Abort(ctx); err != nil {
						t.Fatalf("second Abort: %v", err)
					}
					if n := b.pending(t, key); n != 0 {
						t.Fatalf("%d uploads open after Abort, want 0", n)
					}
					if _, err := b.s.Stat(context.Background(), key); !errors.Is(err, storage.ErrNotExist) {
						t.Fatalf("Stat after Abort = %v, want ErrNotExist", err)
					}
					if _, err := u.Complete(context.Background()); err == nil {
						t.Fatal("Complete after Abort succeeded")
					}
				})
			}
		})
	}
}

// A writer that dies mid-upload leaves an unfinished upload; AbortUploads
// for its prefix removes it and nothing else.
func TestAbortUploadsAfterCrash(t *testing.T) {
	data := randomBytes(partSize+10, 5)
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			keep := "exports/other/keep.zip"
			if _, err := storage.Put(ctx, b.s, keep, bytes.NewReader(data[:100]), storage.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			var crashed []storage.Upload
			for _, key := range []string{"exports/e1/a.zip", "exports/e1/b.zip", "exports/other/c.zip"} {
				u, err := b.s.Create(ctx, key, storage.CreateOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := u.Write(data); err != nil {
					t.Fatal(err)
				}
				crashed = append(crashed, u) // neither completed nor aborted
			}
			// Let the first part of each reach the server.
			waitFor(t, func() bool { return b.pending(t, "exports/") == 3 })

			n, err := b.s.AbortUploads(ctx, "exports/e1/")
			if err != nil || n != 2 {
				t.Fatalf("AbortUploads(exports/e1/) = %d, %v; want 2", n, err)
			}
			if got := b.pending(t, "exports/e1/"); got != 0 {
				t.Fatalf("%d uploads under exports/e1/ remain", got)
			}
			if got := b.pending(t, "exports/other/"); got != 1 {
				t.Fatalf("%d uploads under exports/other/, want the 1 not matching the prefix", got)
			}
			if got := readAll(t, b.s, keep, 0); !bytes.Equal(got, data[:100]) {
				t.Fatal("AbortUploads touched a completed object")
			}
			for _, u := range crashed {
				u.Abort(ctx) // release the test's goroutines
			}
			if n, err := b.s.AbortUploads(ctx, "exports/"); err != nil || n != 0 {
				t.Fatalf("AbortUploads after cleanup = %d, %v; want 0", n, err)
			}
		})
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestDownloadURL(t *testing.T) {
	ctx := context.Background()
	data := randomBytes(4096, 6)
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			key := "exports/u/plyr-export.zip"
			if _, err := storage.Put(ctx, b.s, key, bytes.NewReader(data), storage.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			link, err := b.s.DownloadURL(ctx, key, storage.URLOptions{Expiry: time.Hour, Filename: "plyr export ü.zip"})
			if err != nil {
				t.Fatal(err)
			}
			var got []byte
			switch b.name {
			case "file":
				if !filepath.IsAbs(link) {
					t.Fatalf("file DownloadURL = %q, want an absolute path", link)
				}
				got, err = os.ReadFile(link)
			case "s3":
				for _, want := range []string{"X-Amz-Expires=3600", "X-Amz-Signature=", "response-content-disposition=attachment"} {
					if !strings.Contains(link, want) {
						t.Errorf("presigned URL %q lacks %q", link, want)
					}
				}
				if l := strings.ToLower(link); strings.Contains(l, "checksum") {
					t.Errorf("presigned URL %q asks for checksums", link)
				}
				var resp *http.Response
				if resp, err = http.Get(link); err == nil {
					defer resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						t.Fatalf("GET presigned URL: %s", resp.Status)
					}
					got, err = io.ReadAll(resp.Body)
				}
			}
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("download: %d bytes, %v; want the %d stored", len(got), err, len(data))
			}
		})
	}
}

// R2 rejects the CRC checksum headers and trailers newer SDKs add by
// default; none may be sent by any operation.
func TestS3SendsNoChecksumHeaders(t *testing.T) {
	ctx := context.Background()
	fake := storagetest.NewFakeS3(t)
	rec := &storagetest.Recorder{}
	s := fake.Storage(t, storage.S3Options{PartSize: partSize, HTTPClient: rec.Client()})
	data := randomBytes(partSize+999, 7)
	if _, err := storage.Put(ctx, s, "k/obj", bytes.NewReader(data), storage.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stat(ctx, "k/obj"); err != nil {
		t.Fatal(err)
	}
	readAll(t, s, "k/obj", 10)
	if _, err := s.AbortUploads(ctx, "k/"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "k/obj"); err != nil {
		t.Fatal(err)
	}

	reqs := rec.Requests()
	if len(reqs) < 7 { // create, 2 parts, complete, head, get, list, delete
		t.Fatalf("recorded %d requests, want at least 7", len(reqs))
	}
	for _, r := range reqs {
		if bad := checksumHeaders(r.Header); len(bad) > 0 {
			t.Errorf("%s %s?%s sent %v", r.Method, r.Path, r.Query.Encode(), bad)
		}
	}

	// The default credential chain path reads the environment, which may
	// ask for checksums; the explicit setting still wins.
	t.Run("default credential chain", func(t *testing.T) {
		t.Setenv("AWS_ACCESS_KEY_ID", "env-id")
		t.Setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
		t.Setenv("AWS_REQUEST_CHECKSUM_CALCULATION", "when_supported")
		t.Setenv("AWS_RESPONSE_CHECKSUM_VALIDATION", "when_supported")
		t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
		t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
		rec := &storagetest.Recorder{}
		s, err := storage.NewS3(ctx, storage.S3Options{
			Bucket: storagetest.Bucket, Endpoint: fake.URL, ForcePathStyle: true, HTTPClient: rec.Client(),
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := storage.Put(ctx, s, "k/env", bytes.NewReader(data[:1000]), storage.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		readAll(t, s, "k/env", 0)
		for _, r := range rec.Requests() {
			if bad := checksumHeaders(r.Header); len(bad) > 0 {
				t.Errorf("%s %s?%s sent %v", r.Method, r.Path, r.Query.Encode(), bad)
			}
		}
	})

	// Control: the same recorder catches what the SDK sends when checksums
	// are "when supported" (what awsconfig.LoadDefaultConfig resolves to by
	// default), so the assertions above can fail.
	t.Run("control: when_supported does send them", func(t *testing.T) {
		rec := &storagetest.Recorder{}
		client := s3.New(s3.Options{
			Region:                     "auto",
			BaseEndpoint:               aws.String(fake.URL),
			UsePathStyle:               true,
			Credentials:                credentials.NewStaticCredentialsProvider("id", "secret", ""),
			HTTPClient:                 rec.Client(),
			RequestChecksumCalculation: aws.RequestChecksumCalculationWhenSupported,
		})
		_, err := client.PutObject(ctx, &s3.PutObjectInput{
			Bucket: aws.String(storagetest.Bucket), Key: aws.String("control"), Body: bytes.NewReader(data[:100]),
		})
		if err != nil {
			t.Fatal(err)
		}
		if bad := checksumHeaders(rec.Requests()[0].Header); len(bad) == 0 {
			t.Fatal("default SDK PutObject sent no checksum headers: the check above proves nothing")
		}
	})
}

func checksumHeaders(h http.Header) []string {
	var bad []string
	for name, v := range h {
		l := strings.ToLower(name)
		if strings.HasPrefix(l, "x-amz-checksum-") || l == "x-amz-sdk-checksum-algorithm" || l == "x-amz-trailer" ||
			(l == "content-encoding" && strings.Contains(strings.Join(v, ","), "aws-chunked")) {
			bad = append(bad, name+": "+strings.Join(v, ","))
		}
	}
	return bad
}

func TestS3PartSizes(t *testing.T) {
	ctx := context.Background()
	fake := storagetest.NewFakeS3(t)
	rec := &storagetest.Recorder{}
	s := fake.Storage(t, storage.S3Options{PartSize: partSize, HTTPClient: rec.Client()})
	for _, tc := range []struct {
		name  string
		size  int
		parts []int64 // UploadPart Content-Lengths
	}{
		{"three parts", 2*partSize + 123, []int64{partSize, partSize, 123}},
		{"exact multiple", 2 * partSize, []int64{partSize, partSize}},
		{"one short part", 10, []int64{10}},
		{"empty", 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(rec.Requests())
			data := randomBytes(tc.size, 8)
			// Small writes, so part boundaries come from the buffer.
			u, err := s.Create(ctx, "sizes/"+tc.name, storage.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for p := data; len(p) > 0; {
				n := min(len(p), 100_003)
				if _, err := u.Write(p[:n]); err != nil {
					t.Fatal(err)
				}
				p = p[n:]
			}
			if _, err := u.Complete(ctx); err != nil {
				t.Fatal(err)
			}
			var parts []int64
			for _, r := range rec.Requests()[before:] {
				if r.Method == http.MethodPut && r.Query.Has("partNumber") {
					parts = append(parts, r.ContentLength)
				}
			}
			if !equalInts(parts, tc.parts) {
				t.Fatalf("part sizes %v, want %v", parts, tc.parts)
			}
			if got := readAll(t, s, "sizes/"+tc.name, 0); !bytes.Equal(got, data) {
				t.Fatalf("read back %d bytes, want %d", len(got), len(data))
			}
		})
	}
}

func equalInts(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// An upload of many parts allocates its two part buffers once: memory does
// not grow with the object. The Sink keeps no data, so the process's
// allocations are the client's.
func TestS3UploadMemoryIsBounded(t *testing.T) {
	ctx := context.Background()
	sink := s3sink.Start()
	t.Cleanup(sink.Close)
	s, err := sink.Storage(storage.S3Options{PartSize: partSize})
	if err != nil {
		t.Fatal(err)
	}
	const total = 24 * partSize // 120 MiB
	chunk := randomBytes(256<<10, 9)

	u, err := s.Create(ctx, "big/obj", storage.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for written := 0; written < total; written += len(chunk) {
		if _, err := u.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	obj, err := u.Complete(ctx)
	if err != nil || obj.Size != total {
		t.Fatalf("Complete = %+v, %v", obj, err)
	}
	runtime.ReadMemStats(&after)
	allocated := after.TotalAlloc - before.TotalAlloc
	// Two part buffers plus per-request overhead; far below the object.
	if limit := uint64(2*partSize + 8<<20); allocated > limit {
		t.Fatalf("uploading %d MiB allocated %d MiB, want at most %d MiB (two part buffers + overhead)", total>>20, allocated>>20, limit>>20)
	}
	got, ok := sink.Object("big/obj")
	if !ok || got.Size != total || len(got.PartSizes) != 24 {
		t.Fatalf("sink saw %d bytes in %d parts, want %d bytes in 24 parts", got.Size, len(got.PartSizes), total)
	}
	h := crc32.NewIEEE()
	for written := 0; written < total; written += len(chunk) {
		h.Write(chunk)
	}
	if got.CRC32 != h.Sum32() {
		t.Fatalf("sink CRC %08x, want %08x: parts arrived out of order or altered", got.CRC32, h.Sum32())
	}
	t.Logf("uploaded %d MiB in %d parts, allocating %.1f MiB", total>>20, len(got.PartSizes), float64(allocated)/(1<<20))
}

// A part upload that fails (here: the server is gone) fails the next Write
// or Complete instead of being lost.
func TestS3PartFailureSurfaces(t *testing.T) {
	ctx := context.Background()
	sink := s3sink.Start()
	s, err := sink.Storage(storage.S3Options{PartSize: partSize})
	if err != nil {
		t.Fatal(err)
	}
	u, err := s.Create(ctx, "fail/obj", storage.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sink.Close()
	data := randomBytes(partSize, 10)
	var werr error
	for i := 0; i < 4 && werr == nil; i++ {
		_, werr = u.Write(data)
	}
	_, cerr := u.Complete(ctx)
	if werr == nil && cerr == nil {
		t.Fatal("writing 4 parts to a dead server and completing succeeded")
	}
	if err := u.Abort(ctx); err != nil {
		t.Fatalf("Abort after failure: %v", err)
	}
}

func TestValidKey(t *testing.T) {
	for _, tc := range []struct {
		key string
		ok  bool
	}{
		{"audio/a.mp3", true},
		{"exports/01J/plyr-export-alice.zip", true},
		{"a", true},
		{"", false},
		{"/abs", false},
		{"a/../b", false},
		{"..", false},
		{"a//b", false},
		{"a/", false},
		{".", false},
		{"a\\b", false},
		{"a\x00b", false},
		{"a\nb", false},
		{"bad\xffutf8", false},
		{strings.Repeat("k", storage.MaxKeyLength+1), false},
	} {
		err := storage.ValidKey(tc.key)
		if (err == nil) != tc.ok {
			t.Errorf("ValidKey(%q) = %v, want ok=%v", tc.key, err, tc.ok)
		}
	}
}

func TestFileRefusesReservedKeys(t *testing.T) {
	f, err := storage.NewFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{".hidden", "a/.upload-x", "../escape"} {
		if _, err := f.Stat(context.Background(), key); err == nil || errors.Is(err, storage.ErrNotExist) {
			t.Errorf("Stat(%q) = %v, want a key error", key, err)
		}
	}
}

func TestFromConfig(t *testing.T) {
	ctx := context.Background()
	dataDir := t.TempDir()
	base := config.Storage{S3Region: "auto", ExportURLExpiry: 24 * time.Hour, ExportPartSize: 16 << 20}
	for _, tc := range []struct {
		name    string
		mod     func(*config.Storage)
		want    string // String() of the result
		wantErr string
	}{
		{"default is file under DATA_DIR", func(*config.Storage) {}, "file://" + filepath.ToSlash(filepath.Join(dataDir, "storage")), ""},
		{"explicit file", func(c *config.Storage) { c.URL = "file://" + dataDir + "/x" }, "file://" + dataDir + "/x", ""},
		{"s3 with prefix", func(c *config.Storage) {
			c.URL, c.S3Endpoint, c.S3AccessKeyID, c.S3SecretAccessKey = "s3://plyr-audio/exports", "https://acct.r2.cloudflarestorage.com", "id", "secret"
		}, "s3://plyr-audio/exports/ at https://acct.r2.cloudflarestorage.com", ""},
		{"credentials in URL", func(c *config.Storage) { c.URL = "s3://id:secret@bucket" }, "", "STORAGE_URL"},
		{"half credentials", func(c *config.Storage) { c.URL, c.S3AccessKeyID = "s3://bucket", "id" }, "", "S3_SECRET_ACCESS_KEY"},
		{"part size too small", func(c *config.Storage) { c.ExportPartSize = 1 << 20 }, "", "EXPORT_PART_SIZE"},
		{"unknown scheme", func(c *config.Storage) { c.URL = "gs://bucket" }, "", "STORAGE_URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base
			tc.mod(&c)
			s, err := storage.FromConfig(ctx, c, dataDir)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("FromConfig = %v, want an error naming %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.String() != tc.want {
				t.Fatalf("FromConfig = %s, want %s", s, tc.want)
			}
		})
	}
}
