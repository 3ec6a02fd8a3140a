// Package storagetest gives tests a real S3-protocol server on loopback —
// FakeS3, gofakes3 with its in-memory backend — and Recorder, an
// http.RoundTripper that records what the SDK sends. (For gigabytes that
// must not live in memory, see package s3sink.)
package storagetest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/plyr-fm/plyrtasks/storage"
)

// Bucket is the bucket FakeS3 serves.
const Bucket = "plyr-test"

// FakeS3 is gofakes3 (memory backend) served by httptest on 127.0.0.1.
type FakeS3 struct {
	// URL is the endpoint (http://127.0.0.1:port).
	URL string
	srv *httptest.Server
}

// NewFakeS3 starts a FakeS3 with Bucket created; it stops with the test.
func NewFakeS3(t testing.TB) *FakeS3 {
	t.Helper()
	backend := s3mem.New()
	if err := backend.CreateBucket(Bucket); err != nil {
		t.Fatalf("storagetest: create bucket: %v", err)
	}
	srv := httptest.NewServer(gofakes3.New(backend).Server())
	t.Cleanup(srv.Close)
	return &FakeS3{URL: srv.URL, srv: srv}
}

// Storage returns an *storage.S3 on this server. Zero fields of o are
// filled: Bucket, Endpoint, Region, static credentials, path style. Pass a
// Recorder as o.HTTPClient's transport to see the requests.
func (f *FakeS3) Storage(t testing.TB, o storage.S3Options) *storage.S3 {
	t.Helper()
	return newS3(t, f.URL, o)
}

func newS3(t testing.TB, endpoint string, o storage.S3Options) *storage.S3 {
	if o.Bucket == "" {
		o.Bucket = Bucket
	}
	if o.Endpoint == "" {
		o.Endpoint = endpoint
	}
	if o.Region == "" {
		o.Region = "auto"
	}
	if o.AccessKeyID == "" {
		o.AccessKeyID, o.SecretAccessKey = "test-key-id", "test-secret"
	}
	o.ForcePathStyle = true
	s, err := storage.NewS3(context.Background(), o)
	if err != nil {
		t.Fatalf("storagetest: %v", err)
	}
	return s
}

// Request is one recorded HTTP request.
type Request struct {
	Method        string
	Path          string
	Query         url.Values
	Header        http.Header
	ContentLength int64
}

// Recorder is an http.RoundTripper that records every request before
// passing it on.
type Recorder struct {
	// Next defaults to http.DefaultTransport.
	Next http.RoundTripper
	mu   sync.Mutex
	reqs []Request
}

// RoundTrip records req and forwards it.
func (r *Recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.reqs = append(r.reqs, Request{
		Method:        req.Method,
		Path:          req.URL.Path,
		Query:         req.URL.Query(),
		Header:        req.Header.Clone(),
		ContentLength: req.ContentLength,
	})
	r.mu.Unlock()
	next := r.Next
	if next == nil {
		next = http.DefaultTransport
	}
	return next.RoundTrip(req)
}

// Requests returns a copy of the requests so far.
func (r *Recorder) Requests() []Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Request(nil), r.reqs...)
}

// Client returns an *http.Client that sends through r.
func (r *Recorder) Client() *http.Client { return &http.Client{Transport: r} }
