package moderation

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
)

// AudioURLError refuses an audio_url: it names the field and says why.
// Temporary is true only when the URL could not be checked right now (a DNS
// failure, an unreachable host during the preflight); such a refusal is
// retried, every other one is permanent.
type AudioURLError struct {
	URL       string // the URL without its query, which may carry a signature
	Reason    string
	Temporary bool
	Err       error
}

func (e *AudioURLError) Error() string {
	msg := "audio_url: " + e.Reason
	if e.URL != "" {
		msg += " (" + e.URL + ")"
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *AudioURLError) Unwrap() error { return e.Err }

// GuardOptions configure which audio URLs may be sent for scanning.
type GuardOptions struct {
	// AllowedHosts are the hosts audio may be served from: exact names
	// ("audio.plyr.fm") or "*.example.com" for any subdomain. Empty refuses
	// every URL. (AUDIO_URL_ALLOWED_HOSTS)
	AllowedHosts []string
	// DevHTTPHosts are development hosts ("localhost", "127.0.0.1",
	// "minio"): allowed like AllowedHosts, and for them alone plain http and
	// private or loopback addresses are accepted. (AUDIO_URL_DEV_HTTP_HOSTS)
	DevHTTPHosts []string
	// Preflight, when true, sends a HEAD request for the audio before a
	// scan, following redirects only while every hop passes the same checks,
	// so an allow-listed URL that redirects off the list is refused before
	// the moderation service fetches it. Default false (config default on).
	Preflight bool
	// LookupIP resolves a host name. Default net.DefaultResolver.LookupNetIP.
	LookupIP func(ctx context.Context, host string) ([]netip.Addr, error)
}

// Guard checks audio URLs before they leave plyrtasks. The moderation service
// fetches the audio itself, so Guard is mostly validation: https only (http
// only for development hosts), an allow-listed host, no credentials in the
// URL, no private, loopback or link-local address as a literal or as what
// the host resolves to (development hosts excepted), and, with Preflight,
// no redirect off the list.
//
// The DNS check is defence in depth, not a guarantee: the moderation service
// resolves the name again from its own network. The allow-list is the
// control that matters.
type Guard struct {
	allowed []string
	dev     []string
	opts    GuardOptions
	client  *http.Client
}

// NewGuard returns a Guard. Host entries are normalised to lower case;
// an entry with a scheme, port, path or spaces is an error.
func NewGuard(o GuardOptions) (*Guard, error) {
	g := &Guard{opts: o}
	var err error
	if g.allowed, err = normaliseHosts("allowed hosts", o.AllowedHosts); err != nil {
		return nil, err
	}
	if g.dev, err = normaliseHosts("development hosts", o.DevHTTPHosts); err != nil {
		return nil, err
	}
	if g.opts.LookupIP == nil {
		g.opts.LookupIP = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
	}
	g.client = &http.Client{
		// Every hop is checked before it is followed.
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return &AudioURLError{URL: safeURL(req.URL), Reason: "too many redirects (more than 5)"}
			}
			if err := g.check(req.Context(), req.URL); err != nil {
				var ae *AudioURLError
				if errors.As(err, &ae) && !ae.Temporary {
					ae.Reason = "redirect refused: " + ae.Reason
				}
				return err
			}
			return nil
		},
	}
	return g, nil
}

// ValidHost reports whether h is a valid allow-list entry: a host name or IP
// address, optionally "*." followed by a host name.
func ValidHost(h string) bool {
	_, err := normaliseHosts("", []string{h})
	return err == nil
}

func normaliseHosts(what string, hosts []string) ([]string, error) {
	out := make([]string, 0, len(hosts))
	for _, h := range hosts {
		h = strings.ToLower(strings.TrimSpace(h))
		if h == "" {
			continue
		}
		name := strings.TrimPrefix(h, "*.")
		if strings.ContainsAny(name, "/:@?#* \t") && !isIPv6(name) {
			return nil, &ConfigError{Reason: fmt.Sprintf("%s: %q must be a bare host name (no scheme, port or path)", what, h)}
		}
		out = append(out, h)
	}
	return out, nil
}

func isIPv6(s string) bool {
	a, err := netip.ParseAddr(strings.Trim(s, "[]"))
	return err == nil && a.Is6()
}

// Check validates raw without any network access beyond DNS. A refusal is an
// *AudioURLError.
func (g *Guard) Check(ctx context.Context, raw string) error {
	if strings.TrimSpace(raw) == "" {
		return &AudioURLError{Reason: "is required"}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return &AudioURLError{Reason: "is not a valid URL"}
	}
	return g.check(ctx, u)
}

func (g *Guard) check(ctx context.Context, u *url.URL) error {
	shown := safeURL(u)
	host := strings.ToLower(u.Hostname())
	dev := matchHost(g.dev, host)
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && dev:
	case u.Scheme == "http":
		return &AudioURLError{URL: shown, Reason: "must use https (plain http is allowed only for AUDIO_URL_DEV_HTTP_HOSTS)"}
	case u.Scheme == "":
		return &AudioURLError{URL: shown, Reason: "must be an absolute https URL"}
	default:
		return &AudioURLError{URL: shown, Reason: fmt.Sprintf("scheme %q is not allowed (https only)", u.Scheme)}
	}
	if host == "" {
		return &AudioURLError{URL: shown, Reason: "has no host"}
	}
	if u.User != nil {
		return &AudioURLError{URL: shown, Reason: "must not carry credentials"}
	}
	if !dev && !matchHost(g.allowed, host) {
		return &AudioURLError{URL: shown, Reason: fmt.Sprintf("host %q is not in AUDIO_URL_ALLOWED_HOSTS", host)}
	}
	if dev {
		return nil
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if why := internalAddr(a); why != "" {
			return &AudioURLError{URL: shown, Reason: fmt.Sprintf("address %s is %s", a, why)}
		}
		return nil
	}
	addrs, err := g.opts.LookupIP(ctx, host)
	if err != nil {
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
			return &AudioURLError{URL: shown, Reason: fmt.Sprintf("host %q does not resolve", host), Err: err}
		}
		return &AudioURLError{URL: shown, Reason: fmt.Sprintf("host %q could not be resolved now", host), Temporary: true, Err: err}
	}
	if len(addrs) == 0 {
		return &AudioURLError{URL: shown, Reason: fmt.Sprintf("host %q resolves to no address", host)}
	}
	for _, a := range addrs {
		if why := internalAddr(a); why != "" {
			return &AudioURLError{URL: shown, Reason: fmt.Sprintf("host %q resolves to %s, which is %s", host, a, why)}
		}
	}
	return nil
}

// Preflight sends HEAD for raw (GET of one byte where HEAD is refused),
// following redirects only to URLs that pass Check. It returns an
// *AudioURLError: permanent for a refused hop or a 4xx (the audio is not
// there), temporary for network failures and 5xx. A no-op unless
// GuardOptions.Preflight is set.
func (g *Guard) Preflight(ctx context.Context, raw string) error {
	if !g.opts.Preflight {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return &AudioURLError{Reason: "is not a valid URL"}
	}
	shown := safeURL(u)
	status, err := g.probe(ctx, http.MethodHead, raw)
	if err == nil && (status == http.StatusMethodNotAllowed || status == http.StatusNotImplemented) {
		status, err = g.probe(ctx, http.MethodGet, raw)
	}
	if err != nil {
		var ae *AudioURLError
		if errors.As(err, &ae) {
			return ae
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &AudioURLError{URL: shown, Reason: "could not be fetched now", Temporary: true, Err: err}
	}
	switch {
	case status >= 200 && status < 300:
		return nil
	case status >= 500 || status == http.StatusTooManyRequests || status == http.StatusRequestTimeout:
		return &AudioURLError{URL: shown, Reason: fmt.Sprintf("answered HTTP %d", status), Temporary: true}
	default:
		return &AudioURLError{URL: shown, Reason: fmt.Sprintf("answered HTTP %d", status)}
	}
}

func (g *Guard) probe(ctx context.Context, method, raw string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, method, raw, nil)
	if err != nil {
		return 0, &AudioURLError{Reason: "is not a valid URL"}
	}
	if method == http.MethodGet {
		req.Header.Set("Range", "bytes=0-0")
	}
	resp, err := g.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, nil
}

// matchHost reports whether host is in list: an exact entry, or a "*.zone"
// entry with host a subdomain of zone.
func matchHost(list []string, host string) bool {
	host = strings.Trim(host, "[]")
	for _, h := range list {
		if zone, ok := strings.CutPrefix(h, "*."); ok {
			if strings.HasSuffix(host, "."+zone) {
				return true
			}
			continue
		}
		if strings.Trim(h, "[]") == host {
			return true
		}
	}
	return false
}

// Address ranges a public audio URL never points at.
var internalPrefixes = []struct {
	p   netip.Prefix
	why string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "a reserved \"this network\" address"},
	{netip.MustParsePrefix("100.64.0.0/10"), "a carrier-grade NAT (shared) address"},
	{netip.MustParsePrefix("192.0.0.0/24"), "an IETF protocol address"},
	{netip.MustParsePrefix("198.18.0.0/15"), "a benchmarking address"},
	{netip.MustParsePrefix("240.0.0.0/4"), "a reserved address"},
	{netip.MustParsePrefix("64:ff9b::/96"), "a NAT64 address"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "a NAT64 address"},
}

// internalAddr says why a is not a public unicast address, or "".
func internalAddr(a netip.Addr) string {
	a = a.Unmap()
	switch {
	case a.IsLoopback():
		return "a loopback address"
	case a.IsPrivate():
		return "a private address"
	case a.IsLinkLocalUnicast(), a.IsLinkLocalMulticast():
		return "a link-local address"
	case a.IsUnspecified():
		return "the unspecified address"
	case a.IsMulticast(), a.IsInterfaceLocalMulticast():
		return "a multicast address"
	case a.Is4() && a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return "the broadcast address"
	}
	for _, r := range internalPrefixes {
		if r.p.Contains(a) {
			return r.why
		}
	}
	return ""
}

// safeURL shows u without userinfo, query or fragment: presigned URLs carry
// their signature in the query.
func safeURL(u *url.URL) string {
	c := *u
	c.User = nil
	c.RawQuery = ""
	c.ForceQuery = false
	c.Fragment = ""
	c.RawFragment = ""
	return c.String()
}
