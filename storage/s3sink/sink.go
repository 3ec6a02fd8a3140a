// Package s3sink is a minimal S3 multipart-upload endpoint on 127.0.0.1
// that keeps no data, for benchmarks that push gigabytes through the real
// S3 client (package storage) without the server's memory growing with
// them. It implements the wire contract of CreateMultipartUpload,
// UploadPart, CompleteMultipartUpload, AbortMultipartUpload and
// ListMultipartUploads, plus DeleteObject (path-style addressing, no
// signature checks).
package s3sink

import (
	"context"
	"crypto/rand"
	"encoding/xml"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/plyr-fm/plyrtasks/storage"
)

// Sink counts the bytes and CRC-32 of each completed object (parts
// concatenated in part-number order) and discards the data.
type Sink struct {
	// URL is the endpoint (http://127.0.0.1:port).
	URL string
	srv *httptest.Server

	mu        sync.Mutex
	uploads   map[string]*sinkUpload // by upload ID
	completed map[string]SinkObject  // by key
}

// SinkObject is a completed object as the Sink saw it.
type SinkObject struct {
	Size      int64
	CRC32     uint32 // IEEE, of the whole object
	PartSizes []int64
}

type sinkUpload struct {
	key   string
	parts map[int]sinkPart
}

type sinkPart struct {
	size int64
	crc  uint32
}

// Bucket is the one bucket a Sink serves.
const Bucket = "plyr-sink"

// Start starts a Sink; Close stops it.
func Start() *Sink {
	s := &Sink{uploads: map[string]*sinkUpload{}, completed: map[string]SinkObject{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	return s
}

// Close stops the server.
func (s *Sink) Close() { s.srv.Close() }

// Storage returns an *storage.S3 that uploads to this Sink. Bucket,
// Endpoint, Region, credentials and path style are filled in.
func (s *Sink) Storage(o storage.S3Options) (*storage.S3, error) {
	o.Bucket, o.Endpoint, o.Region, o.ForcePathStyle = Bucket, s.URL, "auto", true
	o.AccessKeyID, o.SecretAccessKey = "sink", "sink"
	return storage.NewS3(context.Background(), o)
}

// Object returns what was completed under key (with the storage's key
// prefix, if any).
func (s *Sink) Object(key string) (SinkObject, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.completed[key]
	return o, ok
}

// Open returns how many multipart uploads are neither completed nor aborted.
func (s *Sink) Open() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.uploads)
}

func (s *Sink) serve(w http.ResponseWriter, r *http.Request) {
	bucket, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if bucket != Bucket {
		s.error(w, http.StatusNotFound, "NoSuchBucket")
		return
	}
	q := r.URL.Query()
	_, uploads := q["uploads"]
	uploadID := q.Get("uploadId")
	switch {
	case r.Method == http.MethodPost && uploads:
		id := rand.Text()
		s.mu.Lock()
		s.uploads[id] = &sinkUpload{key: key, parts: map[int]sinkPart{}}
		s.mu.Unlock()
		s.xml(w, struct {
			XMLName  xml.Name `xml:"InitiateMultipartUploadResult"`
			Bucket   string
			Key      string
			UploadId string
		}{Bucket: bucket, Key: key, UploadId: id})
	case r.Method == http.MethodPut && uploadID != "":
		n, err := strconv.Atoi(q.Get("partNumber"))
		if err != nil || n < 1 || n > storage.MaxParts {
			s.error(w, http.StatusBadRequest, "InvalidArgument")
			return
		}
		h := crc32.NewIEEE()
		size, err := io.Copy(h, r.Body)
		if err != nil {
			s.error(w, http.StatusBadRequest, "IncompleteBody")
			return
		}
		s.mu.Lock()
		u, ok := s.uploads[uploadID]
		if ok {
			u.parts[n] = sinkPart{size: size, crc: h.Sum32()}
		}
		s.mu.Unlock()
		if !ok {
			s.error(w, http.StatusNotFound, "NoSuchUpload")
			return
		}
		w.Header().Set("ETag", fmt.Sprintf(`"%08x-%d"`, h.Sum32(), n))
	case r.Method == http.MethodPost && uploadID != "":
		io.Copy(io.Discard, r.Body)
		s.mu.Lock()
		u, ok := s.uploads[uploadID]
		if ok {
			delete(s.uploads, uploadID)
			s.completed[key] = u.object()
		}
		s.mu.Unlock()
		if !ok {
			s.error(w, http.StatusNotFound, "NoSuchUpload")
			return
		}
		s.xml(w, struct {
			XMLName xml.Name `xml:"CompleteMultipartUploadResult"`
			Bucket  string
			Key     string
			ETag    string
		}{Bucket: bucket, Key: key, ETag: `"sink"`})
	case r.Method == http.MethodDelete && uploadID != "":
		s.mu.Lock()
		_, ok := s.uploads[uploadID]
		delete(s.uploads, uploadID)
		s.mu.Unlock()
		if !ok {
			s.error(w, http.StatusNotFound, "NoSuchUpload")
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case r.Method == http.MethodDelete:
		s.mu.Lock()
		delete(s.completed, key)
		s.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	case r.Method == http.MethodGet && uploads:
		type upload struct {
			Key      string
			UploadId string
		}
		var out struct {
			XMLName     xml.Name `xml:"ListMultipartUploadsResult"`
			Bucket      string
			IsTruncated bool
			Upload      []upload
		}
		out.Bucket = bucket
		prefix := q.Get("prefix")
		s.mu.Lock()
		for id, u := range s.uploads {
			if strings.HasPrefix(u.key, prefix) {
				out.Upload = append(out.Upload, upload{Key: u.key, UploadId: id})
			}
		}
		s.mu.Unlock()
		sort.Slice(out.Upload, func(i, j int) bool { return out.Upload[i].Key < out.Upload[j].Key })
		s.xml(w, out)
	default:
		s.error(w, http.StatusNotImplemented, "NotImplemented")
	}
}

func (u *sinkUpload) object() SinkObject {
	nums := make([]int, 0, len(u.parts))
	for n := range u.parts {
		nums = append(nums, n)
	}
	sort.Ints(nums)
	var o SinkObject
	for _, n := range nums {
		p := u.parts[n]
		o.CRC32 = crc32Combine(o.CRC32, p.crc, p.size)
		o.Size += p.size
		o.PartSizes = append(o.PartSizes, p.size)
	}
	return o
}

func (s *Sink) xml(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/xml")
	io.WriteString(w, xml.Header)
	xml.NewEncoder(w).Encode(v)
}

func (s *Sink) error(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, "%s<Error><Code>%s</Code><Message>%s</Message></Error>", xml.Header, code, code)
}
