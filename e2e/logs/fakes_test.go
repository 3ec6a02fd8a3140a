package logs_test

import (
	"bytes"
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
	"testing"
	"time"

	"github.com/plyr-fm/plyrtasks/pds/pdstest"
)

// findPDS returns the test PDS's URL (PLYRTASKS_TEST_PDS_URL, default
// pdstest.DefaultURL) and true when it answers. When it does not, the
// session part of the run cannot happen: it returns a loud message and
// false, or fails the test with PLYRTASKS_REQUIRE_PDS=1.
func findPDS(t *testing.T) (string, string, bool) {
	t.Helper()
	u := os.Getenv("PLYRTASKS_TEST_PDS_URL")
	if u == "" {
		u = pdstest.DefaultURL
	}
	u = strings.TrimRight(u, "/")
	c := &http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(u + "/xrpc/_health")
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return u, "", true
		}
		err = fmt.Errorf("health check: HTTP %d", resp.StatusCode)
	}
	msg := fmt.Sprintf("\n"+
		"################################################################\n"+
		"## NO PDS at %s (%v)\n"+
		"## The log check ran WITHOUT a stored session: no session\n"+
		"## tokens, no token refresh, no comment were checked. Start one\n"+
		"## with ../shared/pds/start.sh (or set PLYRTASKS_TEST_PDS_URL).\n"+
		"################################################################", u, err)
	if os.Getenv("PLYRTASKS_REQUIRE_PDS") == "1" {
		t.Fatal(msg + "\nPLYRTASKS_REQUIRE_PDS=1: failing instead of skipping")
	}
	t.Log(msg)
	return "", msg, false
}

// pdsProxy sits on loopback in front of the real PDS and is the PDS URL
// the stored session gets, so every request of the session passes through
// it. It records the tokens the PDS hands out (createSession at login,
// refreshSession at each refresh), and answers 400 ExpiredToken, as the PDS
// does once an access token's time is up, to any request carrying a login
// access token until a refresh has gone through: so the first task using
// the session must refresh it.
type pdsProxy struct {
	URL string

	mu        sync.Mutex
	login     []string // tokens from createSession
	refreshed []string // tokens from refreshSession
	expired   map[string]bool
	refreshes int
	rejected  int
}

func newPDSProxy(t *testing.T, target string) *pdsProxy {
	t.Helper()
	tu, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &pdsProxy{expired: map[string]bool{}}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(tu)
			// Plain bodies, so ModifyResponse can read the tokens.
			r.Out.Header.Del("Accept-Encoding")
		},
		ModifyResponse: p.record,
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bearer, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		p.mu.Lock()
		expired := bearer != "" && p.expired[bearer]
		if expired {
			p.rejected++
		}
		p.mu.Unlock()
		if expired {
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"error":"ExpiredToken","message":"Token has expired"}`)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

// record keeps the tokens of a createSession or refreshSession answer.
func (p *pdsProxy) record(resp *http.Response) error {
	method := strings.TrimPrefix(resp.Request.URL.Path, "/xrpc/")
	if resp.StatusCode != http.StatusOK ||
		(method != "com.atproto.server.createSession" && method != "com.atproto.server.refreshSession") {
		return nil
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	var out struct {
		AccessJWT  string `json:"accessJwt"`
		RefreshJWT string `json:"refreshJwt"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return fmt.Errorf("pds proxy: %s answer: %w", method, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if method == "com.atproto.server.createSession" {
		p.login = append(p.login, out.AccessJWT, out.RefreshJWT)
		p.expired[out.AccessJWT] = true
		return nil
	}
	p.refreshes++
	p.refreshed = append(p.refreshed, out.AccessJWT, out.RefreshJWT)
	// The PDS no longer "expires" anything once a refresh went through.
	clear(p.expired)
	return nil
}

// tokens returns the login tokens, the refreshed tokens, how many
// refreshes went through and how many requests were answered ExpiredToken.
func (p *pdsProxy) tokens() (login, refreshed []string, refreshes, rejected int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.login...), append([]string(nil), p.refreshed...), p.refreshes, p.rejected
}

// newAudioServer serves audio for the copyright scans' preflight (HEAD,
// or a one-byte GET) on loopback: any path under /audio/ is an MP3.
func newAudioServer(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/audio/") {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "audio/mpeg")
		w.Header().Set("Content-Length", "1")
		if r.Method == http.MethodGet {
			_, _ = w.Write([]byte{0xff})
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}
