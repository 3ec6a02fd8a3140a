// Package pdstest gives tests a real PDS to act on: it finds the reference
// PDS that ../shared/pds/start.sh runs on loopback, creates throwaway
// accounts on it, reads records back through its public XRPC endpoints, and
// puts a fault-injecting, request-counting reverse proxy in front of it.
//
// Tests find the PDS through PLYRTASKS_TEST_PDS_URL (default
// http://localhost:2583; its PLC directory must be up too). When it does not
// answer, a test is skipped with a loud message, or fails when
// PLYRTASKS_REQUIRE_PDS=1 (CI sets it).
package pdstest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// DefaultURL is where ../shared/pds/start.sh serves the PDS.
const DefaultURL = "http://localhost:2583"

// URL returns the test PDS's URL, skipping (or, with
// PLYRTASKS_REQUIRE_PDS=1, failing) the test when it does not answer.
func URL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv("PLYRTASKS_TEST_PDS_URL")
	if u == "" {
		u = DefaultURL
	}
	u = strings.TrimRight(u, "/")
	if err := health(u); err != nil {
		msg := fmt.Sprintf("\n"+
			"################################################################\n"+
			"## NO PDS at %s (%v)\n"+
			"## These tests act on a real ATProto PDS. Start one with:\n"+
			"##     ../shared/pds/start.sh\n"+
			"## (installs on first use, ~2 min; it also runs the PLC on :2582)\n"+
			"################################################################", u, err)
		if os.Getenv("PLYRTASKS_REQUIRE_PDS") == "1" {
			tb.Fatal(msg + "\nPLYRTASKS_REQUIRE_PDS=1: failing instead of skipping")
		}
		tb.Skip(msg)
	}
	return u
}

func health(u string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u+"/xrpc/_health", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("health check: HTTP %d", resp.StatusCode)
	}
	return nil
}

// Account is a throwaway account on the test PDS.
type Account struct {
	DID        string
	Handle     string
	Password   string
	AccessJWT  string
	RefreshJWT string
}

// NewAccount creates a fresh account (handle t<random>.test).
func NewAccount(tb testing.TB, pdsURL string) Account {
	tb.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		tb.Fatal(err)
	}
	name := "t" + hex.EncodeToString(b[:])
	a := Account{Handle: name + ".test", Password: "pw-" + name}
	var out struct {
		DID        string `json:"did"`
		AccessJWT  string `json:"accessJwt"`
		RefreshJWT string `json:"refreshJwt"`
	}
	status, body := call(tb, http.MethodPost, pdsURL+"/xrpc/com.atproto.server.createAccount", "",
		map[string]string{"handle": a.Handle, "email": name + "@example.com", "password": a.Password}, &out)
	if status != http.StatusOK {
		tb.Fatalf("createAccount %s: HTTP %d: %s", a.Handle, status, body)
	}
	a.DID, a.AccessJWT, a.RefreshJWT = out.DID, out.AccessJWT, out.RefreshJWT
	return a
}

// RevokeSession deletes the PDS session of refreshJWT
// (com.atproto.server.deleteSession): the refresh token stops working.
func RevokeSession(tb testing.TB, pdsURL, refreshJWT string) {
	tb.Helper()
	if status, body := call(tb, http.MethodPost, pdsURL+"/xrpc/com.atproto.server.deleteSession", refreshJWT, nil, nil); status != http.StatusOK {
		tb.Fatalf("deleteSession: HTTP %d: %s", status, body)
	}
}

// Record is a record as the PDS returns it.
type Record struct {
	URI   string          `json:"uri"`
	CID   string          `json:"cid"`
	Value json.RawMessage `json:"value"`
}

// Fields decodes the record value into a map (numbers as float64).
func (r Record) Fields(tb testing.TB) map[string]any {
	tb.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Value, &m); err != nil {
		tb.Fatalf("record %s: %v", r.URI, err)
	}
	return m
}

// GetRecord reads a record through the public getRecord endpoint; ok is
// false when there is none.
func GetRecord(tb testing.TB, pdsURL, did, collection, rkey string) (Record, bool) {
	tb.Helper()
	q := url.Values{"repo": {did}, "collection": {collection}, "rkey": {rkey}}
	var r Record
	status, body := call(tb, http.MethodGet, pdsURL+"/xrpc/com.atproto.repo.getRecord?"+q.Encode(), "", nil, &r)
	if status == http.StatusBadRequest && strings.Contains(body, "RecordNotFound") {
		return Record{}, false
	}
	if status != http.StatusOK {
		tb.Fatalf("getRecord %s/%s/%s: HTTP %d: %s", did, collection, rkey, status, body)
	}
	return r, true
}

// ListRecords lists every record of collection in did's repo (newest
// first) through the public listRecords endpoint.
func ListRecords(tb testing.TB, pdsURL, did, collection string) []Record {
	tb.Helper()
	var all []Record
	cursor := ""
	for {
		q := url.Values{"repo": {did}, "collection": {collection}, "limit": {"100"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var out struct {
			Cursor  string   `json:"cursor"`
			Records []Record `json:"records"`
		}
		status, body := call(tb, http.MethodGet, pdsURL+"/xrpc/com.atproto.repo.listRecords?"+q.Encode(), "", nil, &out)
		if status != http.StatusOK {
			tb.Fatalf("listRecords %s/%s: HTTP %d: %s", did, collection, status, body)
		}
		all = append(all, out.Records...)
		if out.Cursor == "" || len(out.Records) == 0 {
			return all
		}
		cursor = out.Cursor
	}
}

// PutRecord writes a record as the account (for setting up a test).
func PutRecord(tb testing.TB, pdsURL string, a Account, collection, rkey string, record any) Record {
	tb.Helper()
	var out Record
	status, body := call(tb, http.MethodPost, pdsURL+"/xrpc/com.atproto.repo.putRecord", a.AccessJWT,
		map[string]any{"repo": a.DID, "collection": collection, "rkey": rkey, "record": record}, &out)
	if status != http.StatusOK {
		tb.Fatalf("putRecord %s/%s: HTTP %d: %s", collection, rkey, status, body)
	}
	return out
}

func call(tb testing.TB, method, u, bearer string, in, out any) (int, string) {
	tb.Helper()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			tb.Fatal(err)
		}
		body = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		tb.Fatal(err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK && out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			tb.Fatalf("%s %s: decode: %v", method, u, err)
		}
	}
	return resp.StatusCode, string(b)
}

// Fault is an answer the proxy gives instead of forwarding a request.
type Fault struct {
	Status int
	Header http.Header
	Body   string // JSON error body
}

// Rule decides whether the proxy answers a request itself: it returns the
// fault and true, or false to forward it. Rules see the XRPC method (NSID)
// and the request's headers.
type Rule func(method string, h http.Header) (Fault, bool)

// Proxy is a reverse proxy on loopback in front of the PDS. It counts the
// requests per XRPC method that reach it and can answer some itself (a
// 5xx, a 429, an expired token) to inject faults.
type Proxy struct {
	URL string

	mu     sync.Mutex
	counts map[string]int
	rules  []Rule
}

// NewProxy starts a proxy in front of target, closed at cleanup.
func NewProxy(tb testing.TB, target string) *Proxy {
	tb.Helper()
	tu, err := url.Parse(target)
	if err != nil {
		tb.Fatal(err)
	}
	p := &Proxy{counts: map[string]int{}}
	rp := httputil.NewSingleHostReverseProxy(tu)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		method := strings.TrimPrefix(r.URL.Path, "/xrpc/")
		p.mu.Lock()
		p.counts[method]++
		var fault *Fault
		for _, rule := range p.rules {
			if f, ok := rule(method, r.Header); ok {
				fault = &f
				break
			}
		}
		p.mu.Unlock()
		if fault == nil {
			rp.ServeHTTP(w, r)
			return
		}
		_, _ = io.Copy(io.Discard, r.Body)
		for k, vs := range fault.Header {
			for _, v := range vs {
				w.Header().Add(k, v)
			}
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(fault.Status)
		_, _ = io.WriteString(w, fault.Body)
	}))
	tb.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

// Add installs a rule (rules run in order; the first match answers).
func (p *Proxy) Add(r Rule) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = append(p.rules, r)
}

// Reset removes every rule.
func (p *Proxy) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = nil
}

// Count is how many requests for XRPC method reached the proxy.
func (p *Proxy) Count(method string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.counts[method]
}

// FailTimes answers the next n requests for method with f, then forwards.
func FailTimes(method string, n int, f Fault) Rule {
	var mu sync.Mutex
	left := n
	return func(m string, _ http.Header) (Fault, bool) {
		if m != method {
			return Fault{}, false
		}
		mu.Lock()
		defer mu.Unlock()
		if left <= 0 {
			return Fault{}, false
		}
		left--
		return f, true
	}
}

// RejectTokenUntilRefresh answers requests carrying access token tok with
// 400 ExpiredToken, as the PDS does once an access token's time is up,
// until a refreshSession call has gone through the proxy. (A token
// refreshed within the same second as it was issued can be byte-identical
// to the old one, so "until refreshed" rather than "this token".)
func RejectTokenUntilRefresh(tok string) Rule {
	var refreshed atomic.Bool
	return func(method string, h http.Header) (Fault, bool) {
		if method == "com.atproto.server.refreshSession" {
			refreshed.Store(true)
			return Fault{}, false
		}
		if refreshed.Load() || h.Get("Authorization") != "Bearer "+tok {
			return Fault{}, false
		}
		return Fault{Status: http.StatusBadRequest, Body: `{"error":"ExpiredToken","message":"Token has expired"}`}, true
	}
}

// ServerError is a 502 the way a proxy in front of a PDS fails.
func ServerError() Fault {
	return Fault{Status: http.StatusBadGateway, Body: `{"error":"InternalServerError","message":"injected by pdstest"}`}
}

// FailAfter lets the first skip requests for method through, then answers
// the next n with f, then forwards again: a failure in the middle of a task.
func FailAfter(method string, skip, n int, f Fault) Rule {
	var mu sync.Mutex
	seen := 0
	return func(m string, _ http.Header) (Fault, bool) {
		if m != method {
			return Fault{}, false
		}
		mu.Lock()
		defer mu.Unlock()
		seen++
		if seen <= skip || seen > skip+n {
			return Fault{}, false
		}
		return f, true
	}
}
