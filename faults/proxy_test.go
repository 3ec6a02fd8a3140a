package faults

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"testing"
	"time"
)

// holdProxy is a reverse proxy on loopback in front of an external service
// (the PDS, the moderation service, S3) that slows the external side down
// instead of putting test hooks into production code: a request whose gate
// is held is forwarded — the service does its work, the side effect
// happens — and then its answer is held back until the gate is released or
// the caller gives up. A task waiting for such an answer is reliably "in
// the middle", after its side effect and before it learned of it: the
// worst moment to be killed.
//
// A request's gate comes from gateFn (its method, path, query and body);
// "" is never held. fail, when set, answers a request itself without
// forwarding (a 503, say).
type holdProxy struct {
	URL string

	gateFn func(r *http.Request, body []byte) string
	fail   func(r *http.Request, body []byte) (status int, answer string, ok bool)

	mu      sync.Mutex
	holding map[string]bool
	release map[string]chan struct{}
	waiting map[string]int // answers held right now, per gate
	held    map[string]int // answers ever held, per gate
	count   map[string]int // requests per gate ("" included)
}

type gateKey struct{}

func newHoldProxy(t testing.TB, target string, gateFn func(r *http.Request, body []byte) string) *holdProxy {
	t.Helper()
	tu, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &holdProxy{
		gateFn:  gateFn,
		holding: map[string]bool{},
		release: map[string]chan struct{}{},
		waiting: map[string]int{},
		held:    map[string]int{},
		count:   map[string]int{},
	}
	rp := httputil.NewSingleHostReverseProxy(tu)
	rp.ModifyResponse = p.hold
	rp.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
		// The caller is gone (killed worker) or the service failed.
		w.WriteHeader(http.StatusBadGateway)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		g := ""
		if p.gateFn != nil {
			g = p.gateFn(r, body)
		}
		p.mu.Lock()
		p.count[g]++
		p.mu.Unlock()
		p.mu.Lock()
		fail := p.fail
		p.mu.Unlock()
		if fail != nil {
			if status, msg, ok := fail(r, body); ok {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(status)
				_, _ = io.WriteString(w, msg)
				return
			}
		}
		rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), gateKey{}, g)))
	}))
	t.Cleanup(func() {
		p.ReleaseAll()
		srv.Close()
	})
	p.URL = srv.URL
	return p
}

// hold runs once the service answered: it keeps the answer while the
// request's gate is held.
func (p *holdProxy) hold(resp *http.Response) error {
	ctx := resp.Request.Context()
	g, _ := ctx.Value(gateKey{}).(string)
	p.mu.Lock()
	if g == "" || !p.holding[g] {
		p.mu.Unlock()
		return nil
	}
	ch := p.release[g]
	p.waiting[g]++
	p.held[g]++
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.waiting[g]--
		p.mu.Unlock()
	}()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// SetFail makes the proxy answer the requests fail picks itself, without
// forwarding them (nil: forward everything).
func (p *holdProxy) SetFail(fail func(r *http.Request, body []byte) (status int, answer string, ok bool)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fail = fail
}

// Hold starts holding the answers of gates.
func (p *holdProxy) Hold(gates ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, g := range gates {
		if !p.holding[g] {
			p.holding[g] = true
			p.release[g] = make(chan struct{})
		}
	}
}

// Release lets the held answers of gates through and stops holding them.
func (p *holdProxy) Release(gates ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, g := range gates {
		if p.holding[g] {
			p.holding[g] = false
			close(p.release[g])
		}
	}
}

// ReleaseAll releases every gate.
func (p *holdProxy) ReleaseAll() {
	p.mu.Lock()
	var gates []string
	for g, on := range p.holding {
		if on {
			gates = append(gates, g)
		}
	}
	p.mu.Unlock()
	p.Release(gates...)
}

// Waiting is how many answers of gate are held right now.
func (p *holdProxy) Waiting(gate string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.waiting[gate]
}

// Held is how many answers of gate were ever held.
func (p *holdProxy) Held(gate string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.held[gate]
}

// Count is how many requests of gate reached the proxy.
func (p *holdProxy) Count(gate string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.count[gate]
}

// WaitWaiting waits until n answers of gate are held at once.
func (p *holdProxy) WaitWaiting(t testing.TB, gate string, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for p.Waiting(gate) < n {
		if time.Now().After(deadline) {
			t.Fatalf("proxy: %d answers of gate %q held after %s, want %d", p.Waiting(gate), gate, timeout, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
