package moderation_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/plyr-fm/plyrtasks/moderation"
)

// fakeDNS answers from a table: the machine has no DNS beyond loopback, and
// what a name resolves to is exactly what these tests vary.
var fakeDNS = map[string][]string{
	"audio.plyr.test":    {"203.0.113.10"},
	"cdn.plyr.test":      {"203.0.113.11", "2001:db8::11"},
	"a.cdn.plyr.test":    {"203.0.113.12"},
	"internal.plyr.test": {"203.0.113.13", "10.1.2.3"},
	"meta.plyr.test":     {"169.254.169.254"},
	"v6local.plyr.test":  {"fe80::1"},
	"mapped.plyr.test":   {"::ffff:127.0.0.1"},
	"cgnat.plyr.test":    {"100.64.1.1"},
}

func publicDNS(_ context.Context, host string) ([]netip.Addr, error) {
	switch host {
	case "flaky.plyr.test":
		return nil, &net.DNSError{Err: "i/o timeout", Name: host, IsTimeout: true}
	}
	addrs, ok := fakeDNS[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	out := make([]netip.Addr, len(addrs))
	for i, a := range addrs {
		out[i] = netip.MustParseAddr(a)
	}
	return out, nil
}

func TestGuardCheck(t *testing.T) {
	g, err := moderation.NewGuard(moderation.GuardOptions{
		AllowedHosts: []string{"audio.plyr.test", "*.cdn.plyr.test", "cdn.plyr.test", "internal.plyr.test",
			"meta.plyr.test", "v6local.plyr.test", "mapped.plyr.test", "cgnat.plyr.test", "flaky.plyr.test",
			"gone.plyr.test", "10.0.0.8", "203.0.113.50", "localhost"},
		DevHTTPHosts: []string{"minio", "127.0.0.1"},
		LookupIP:     publicDNS,
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		url       string
		want      string // "" = accepted; else a substring of the error
		temporary bool
	}{
		{url: "https://audio.plyr.test/a.mp3"},
		{url: "https://AUDIO.plyr.test:8443/a.mp3?sig=x"},
		{url: "https://a.cdn.plyr.test/a.mp3"},
		{url: "https://cdn.plyr.test/a.mp3"},
		{url: "https://203.0.113.50/a.mp3"},
		{url: "http://minio:9000/bucket/a.mp3"},
		{url: "http://127.0.0.1:9000/a.mp3"},
		{url: "", want: "audio_url: is required"},
		{url: "http://audio.plyr.test/a.mp3", want: "must use https"},
		{url: "file:///etc/passwd", want: `scheme "file" is not allowed`},
		{url: "ftp://audio.plyr.test/a.mp3", want: `scheme "ftp" is not allowed`},
		{url: "gopher://audio.plyr.test/", want: `scheme "gopher" is not allowed`},
		{url: "//audio.plyr.test/a.mp3", want: "must be an absolute https URL"},
		{url: "https://user:pw@audio.plyr.test/a.mp3", want: "must not carry credentials"},
		{url: "https://evil.example/a.mp3", want: `host "evil.example" is not in AUDIO_URL_ALLOWED_HOSTS`},
		{url: "https://audio.plyr.test.evil.example/a.mp3", want: "is not in AUDIO_URL_ALLOWED_HOSTS"},
		{url: "https://xcdn.plyr.test/a.mp3", want: "is not in AUDIO_URL_ALLOWED_HOSTS"},
		{url: "https://10.0.0.8/a.mp3", want: "address 10.0.0.8 is a private address"},
		{url: "https://internal.plyr.test/a.mp3", want: "resolves to 10.1.2.3, which is a private address"},
		{url: "https://meta.plyr.test/latest", want: "which is a link-local address"},
		{url: "https://v6local.plyr.test/a.mp3", want: "which is a link-local address"},
		{url: "https://mapped.plyr.test/a.mp3", want: "which is a loopback address"},
		{url: "https://cgnat.plyr.test/a.mp3", want: "carrier-grade NAT"},
		{url: "https://gone.plyr.test/a.mp3", want: `host "gone.plyr.test" does not resolve`},
		{url: "https://flaky.plyr.test/a.mp3", want: "could not be resolved now", temporary: true},
		{url: "https://[::1]/a.mp3", want: "not in AUDIO_URL_ALLOWED_HOSTS"},
		{url: "https://audio.plyr.test\x7f/a.mp3", want: "is not a valid URL"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			err := g.Check(context.Background(), tt.url)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Check = %v, want accepted", err)
				}
				return
			}
			var ae *moderation.AudioURLError
			if !errors.As(err, &ae) {
				t.Fatalf("Check = %v, want an AudioURLError containing %q", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "audio_url: ") {
				t.Errorf("Check = %q, want audio_url: … %q", err, tt.want)
			}
			if ae.Temporary != tt.temporary || moderation.Retryable(err) != tt.temporary {
				t.Errorf("Temporary = %v, Retryable = %v; want %v", ae.Temporary, moderation.Retryable(err), tt.temporary)
			}
			if strings.Contains(err.Error(), "sig=") || strings.Contains(err.Error(), "pw@") {
				t.Errorf("error %q shows the query or credentials", err)
			}
		})
	}
}

// TestGuardRealResolver resolves "localhost" through the system resolver:
// an allow-listed name that points at loopback is refused.
func TestGuardRealResolver(t *testing.T) {
	g, err := moderation.NewGuard(moderation.GuardOptions{AllowedHosts: []string{"localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	err = g.Check(context.Background(), "https://localhost/a.mp3")
	if err == nil || !strings.Contains(err.Error(), `host "localhost" resolves to`) || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("Check(localhost) = %v, want refused as loopback", err)
	}
}

func TestGuardEmptyAllowList(t *testing.T) {
	g, err := moderation.NewGuard(moderation.GuardOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Check(context.Background(), "https://audio.plyr.test/a.mp3"); err == nil {
		t.Fatal("an empty allow-list accepted a URL")
	}
}

// audioHost serves audio on loopback and records the requests it saw.
type audioHost struct {
	*httptest.Server
	mu   sync.Mutex
	seen []string // "METHOD path range"
}

func newAudioHost(t *testing.T, h func(w http.ResponseWriter, r *http.Request)) *audioHost {
	a := &audioHost{}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		a.seen = append(a.seen, r.Method+" "+r.URL.Path+" "+r.Header.Get("Range"))
		a.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(a.Close)
	return a
}

func (a *audioHost) requests() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.seen...)
}

func TestGuardPreflight(t *testing.T) {
	// The final hop: a loopback audio host, allowed as a development host.
	final := newAudioHost(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/a.mp3":
			w.Header().Set("Content-Type", "audio/mpeg")
		case "/head-refused.mp3":
			if r.Method == http.MethodHead {
				w.WriteHeader(http.StatusMethodNotAllowed)
				return
			}
			w.WriteHeader(http.StatusPartialContent)
			_, _ = w.Write([]byte{0xff})
		case "/broken.mp3":
			w.WriteHeader(http.StatusBadGateway)
		default:
			http.NotFound(w, r)
		}
	})
	redirector := newAudioHost(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/to-final":
			http.Redirect(w, r, final.URL+"/a.mp3", http.StatusFound)
		case "/off-list":
			http.Redirect(w, r, "https://evil.example/a.mp3", http.StatusFound)
		case "/to-private":
			http.Redirect(w, r, "https://10.0.0.9/a.mp3", http.StatusFound)
		case "/to-file":
			http.Redirect(w, r, "file:///etc/passwd", http.StatusFound)
		case "/loop":
			http.Redirect(w, r, "/loop", http.StatusFound)
		}
	})
	g, err := moderation.NewGuard(moderation.GuardOptions{
		DevHTTPHosts: []string{"127.0.0.1"},
		Preflight:    true,
		LookupIP:     publicDNS,
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		url       string
		want      string
		temporary bool
	}{
		{url: final.URL + "/a.mp3"},
		{url: final.URL + "/head-refused.mp3"},
		{url: redirector.URL + "/to-final"},
		{url: redirector.URL + "/off-list", want: `redirect refused: host "evil.example" is not in AUDIO_URL_ALLOWED_HOSTS`},
		{url: redirector.URL + "/to-private", want: "redirect refused: "},
		{url: redirector.URL + "/to-file", want: "redirect refused: scheme \"file\""},
		{url: redirector.URL + "/loop", want: "too many redirects"},
		{url: final.URL + "/missing.mp3", want: "answered HTTP 404"},
		{url: final.URL + "/broken.mp3", want: "answered HTTP 502", temporary: true},
	}
	for _, tt := range tests {
		t.Run(strings.TrimPrefix(tt.url, "http://"), func(t *testing.T) {
			if err := g.Check(context.Background(), tt.url); err != nil {
				t.Fatalf("Check: %v", err)
			}
			err := g.Preflight(context.Background(), tt.url)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Preflight = %v, want accepted", err)
				}
				return
			}
			var ae *moderation.AudioURLError
			if !errors.As(err, &ae) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Preflight = %v, want an AudioURLError containing %q", err, tt.want)
			}
			if moderation.Retryable(err) != tt.temporary {
				t.Errorf("Retryable = %v, want %v", moderation.Retryable(err), tt.temporary)
			}
		})
	}
	if got := final.requests(); !contains(got, "GET /head-refused.mp3 bytes=0-0") || !contains(got, "HEAD /a.mp3 ") {
		t.Errorf("audio host saw %q, want HEAD /a.mp3 and a one-byte GET after the refused HEAD", got)
	}
}

func TestGuardPreflightUnreachableIsTemporary(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	url := dead.URL + "/a.mp3"
	dead.Close()
	g, err := moderation.NewGuard(moderation.GuardOptions{DevHTTPHosts: []string{"127.0.0.1"}, Preflight: true})
	if err != nil {
		t.Fatal(err)
	}
	err = g.Preflight(context.Background(), url)
	if err == nil || !moderation.Retryable(err) || !strings.Contains(err.Error(), "could not be fetched now") {
		t.Fatalf("Preflight(dead host) = %v, want a temporary AudioURLError", err)
	}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
