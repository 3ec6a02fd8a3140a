package pds

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/atproto/atclient"
	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/auth/oauth"
	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/plyr-fm/plyrtasks/job"
	"github.com/plyr-fm/plyrtasks/store"
)

// Session is one stored user session, ready to act as its user. It is safe
// for concurrent use; each task usually loads its own.
type Session struct {
	c       *Client
	id      string
	did     syntax.DID
	handle  string
	host    string
	kind    store.SessionKind
	api     *atclient.APIClient
	dpopKey atcrypto.PrivateKey // OAuth sessions only

	mu  sync.Mutex
	cur store.Session // the newest tokens this Session knows
}

// ID is the session's ID in the store.
func (s *Session) ID() string { return s.id }

// DID is the account the session acts as.
func (s *Session) DID() string { return s.did.String() }

// Handle is the account's handle when the session was stored.
func (s *Session) Handle() string { return s.handle }

// PDSURL is the PDS the session talks to.
func (s *Session) PDSURL() string { return s.host }

// API is the authenticated XRPC client (a lexutil.LexClient) for calls this
// package does not wrap: pass it to indigo's generated api/atproto
// functions. Its non-2xx answers are *XRPCError; tokens refresh as needed.
func (s *Session) API() *atclient.APIClient { return s.api }

func (s *Session) tokens() store.Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}

func (s *Session) setTokens(cur store.Session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cur = cur
}

func (s *Session) setNonce(nonce string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cur.Tokens.DPoPNonce = nonce
}

// refresh replaces stale's tokens with fresh ones: ones another goroutine
// of this Session already got, or those Client.refresh returns.
func (s *Session) refresh(ctx context.Context, stale store.Session) (store.Session, error) {
	cur := s.tokens()
	if !sameTokens(cur, stale) {
		return cur, nil
	}
	// The newest DPoP nonce this Session learned travels with the tokens
	// (it is not a token: a refresh elsewhere does not change it).
	nonce := cur.Tokens.DPoPNonce
	stale.Tokens.DPoPNonce = nonce
	fresh, err := s.c.refresh(ctx, stale)
	if err != nil {
		return store.Session{}, err
	}
	if nonce != "" {
		fresh.Tokens.DPoPNonce = nonce
	}
	s.setTokens(fresh)
	return fresh, nil
}

func sameTokens(a, b store.Session) bool {
	return a.Tokens.AccessJWT == b.Tokens.AccessJWT && a.Tokens.RefreshJWT == b.Tokens.RefreshJWT
}

// refresh gets new tokens for stale, at most once per expiry across every
// process: it takes the session's lock, re-reads the session (someone may
// have refreshed while it waited), refreshes, and saves with compare-and-swap
// on the refresh token it used.
func (c *Client) refresh(ctx context.Context, stale store.Session) (store.Session, error) {
	unlock, err := c.lockSession(ctx, stale.ID)
	if err != nil {
		return store.Session{}, fmt.Errorf("refresh session %s: %w", stale.ID, err)
	}
	defer unlock()

	cur, err := c.opts.Store.GetSession(ctx, stale.ID)
	if errors.Is(err, store.ErrNotFound) {
		return store.Session{}, c.sessionExpired(stale.ID, "session was removed (logged out)")
	}
	if err != nil {
		return store.Session{}, fmt.Errorf("refresh session %s: reload: %w", stale.ID, err)
	}
	if !sameTokens(cur, stale) {
		return cur, nil // refreshed by another task or process meanwhile
	}

	var next store.SessionTokens
	switch cur.Kind {
	case store.SessionOAuth:
		next, err = c.refreshOAuth(ctx, cur)
	default:
		next, err = c.refreshPassword(ctx, cur)
	}
	if err != nil {
		return store.Session{}, err
	}
	if n := stale.Tokens.DPoPNonce; n != "" && cur.Kind == store.SessionOAuth {
		next.DPoPNonce = n // the newest host nonce this process learned
	}
	exp := jwtExpiry(next.AccessJWT)
	swapped, err := c.opts.Store.UpdateSessionTokens(ctx, cur.ID, cur.Tokens.RefreshJWT, next, exp)
	switch {
	case err != nil:
		// The PDS already rotated the tokens. Use them for this task; the
		// next task reuses the old refresh token, which the PDS accepts
		// again within its grace period.
		c.log.Warn("pds: save refreshed tokens", "session_id", cur.ID, "err", err)
	case !swapped:
		// Someone refreshed without our lock (its lease ran out): theirs
		// is what the store keeps, so use theirs.
		if latest, err := c.opts.Store.GetSession(ctx, cur.ID); err == nil {
			return latest, nil
		}
	}
	c.refreshes.Add(1)
	c.log.Info("pds: refreshed session tokens", "session_id", cur.ID, "did", cur.DID)
	if c.opts.OnRefresh != nil {
		c.opts.OnRefresh(cur.ID)
	}
	cur.Tokens, cur.ExpiresAt = next, exp
	return cur, nil
}

// refusedRefresh reports whether a refresh answer means the session is
// over (a 4xx other than 408/429), not that the PDS is having a bad moment.
func refusedRefresh(status int) bool {
	return status >= 400 && status < 500 && status != http.StatusRequestTimeout && status != http.StatusTooManyRequests
}

func (c *Client) refreshPassword(ctx context.Context, cur store.Session) (store.SessionTokens, error) {
	out, err := atproto.ServerRefreshSession(ctx, c.plainAPI(strings.TrimRight(cur.PDSURL, "/"), cur.Tokens.RefreshJWT))
	if err != nil {
		var xe *XRPCError
		if errors.As(err, &xe) && refusedRefresh(xe.Status) {
			return store.SessionTokens{}, c.sessionExpired(cur.ID, fmt.Sprintf("the PDS refused the refresh token (HTTP %d %s: %s)", xe.Status, xe.Name, xe.Message))
		}
		return store.SessionTokens{}, fmt.Errorf("refresh session %s: %w", cur.ID, err)
	}
	if out.Did != cur.DID {
		return store.SessionTokens{}, job.Permanent(fmt.Errorf("refresh session %s: the PDS answered for %s, not %s", cur.ID, out.Did, cur.DID))
	}
	next := cur.Tokens
	next.AccessJWT, next.RefreshJWT = out.AccessJwt, out.RefreshJwt
	return next, nil
}

// refreshOAuth refreshes a DPoP-bound OAuth session with indigo's
// oauth.ClientSession (DPoP proofs, nonce retry, client assertion).
func (c *Client) refreshOAuth(ctx context.Context, cur store.Session) (store.SessionTokens, error) {
	t := cur.Tokens
	clientID := t.ClientID
	if clientID == "" {
		clientID = c.opts.OAuth.ClientID
	}
	if clientID == "" || t.TokenEndpoint == "" {
		return store.SessionTokens{}, job.Permanent(fmt.Errorf("refresh session %s: OAuth session has no client_id or token endpoint (set ATPROTO_OAUTH_CLIENT_ID)", cur.ID))
	}
	key, err := parseDPoPKey(t.DPoPKey)
	if err != nil {
		return store.SessionTokens{}, job.Permanent(fmt.Errorf("refresh session %s: DPoP key: %w", cur.ID, err))
	}
	rec := &statusRecorder{next: c.hc.Transport}
	cfg := &oauth.ClientConfig{ClientID: clientID, UserAgent: c.opts.UserAgent}
	if c.clientKey != nil {
		kid := c.opts.OAuth.KeyID
		cfg.PrivateKey, cfg.KeyID = c.clientKey, &kid
	}
	var saved *oauth.ClientSessionData
	cs := &oauth.ClientSession{
		Client: &http.Client{Transport: rec, Timeout: c.hc.Timeout},
		Config: cfg,
		Data: &oauth.ClientSessionData{
			AccountDID:              syntax.DID(cur.DID),
			SessionID:               cur.ID,
			HostURL:                 cur.PDSURL,
			AuthServerURL:           t.AuthServer,
			AuthServerTokenEndpoint: t.TokenEndpoint,
			AccessToken:             t.AccessJWT,
			RefreshToken:            t.RefreshJWT,
			DPoPAuthServerNonce:     t.DPoPNonce,
			DPoPHostNonce:           t.DPoPNonce,
		},
		DPoPPrivateKey: key,
		PersistSessionCallback: func(_ context.Context, d *oauth.ClientSessionData) {
			cp := *d
			saved = &cp
		},
	}
	access, err := cs.RefreshTokens(ctx)
	if err != nil {
		if st := rec.last(); refusedRefresh(st) {
			return store.SessionTokens{}, c.sessionExpired(cur.ID, fmt.Sprintf("the authorization server refused the refresh token (HTTP %d): %v", st, err))
		}
		return store.SessionTokens{}, fmt.Errorf("refresh session %s: %w", cur.ID, err)
	}
	// DPoPNonce keeps the PDS's (host) nonce, which every request needs;
	// the authorization server's is relearned at the next refresh.
	next := t
	next.AccessJWT = access
	if saved != nil {
		next.RefreshJWT = saved.RefreshToken
	}
	return next, nil
}

// statusRecorder remembers the status of the last response it carried, so
// a refresh failure indigo reports as text can still be classified.
type statusRecorder struct {
	next http.RoundTripper
	mu   sync.Mutex
	code int
}

func (r *statusRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	next := r.next
	if next == nil {
		next = http.DefaultTransport
	}
	resp, err := next.RoundTrip(req)
	if err == nil {
		r.mu.Lock()
		r.code = resp.StatusCode
		r.mu.Unlock()
	}
	return resp, err
}

func (r *statusRecorder) last() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.code
}

// sessionAuth is the atclient.AuthMethod of a Session: it signs requests,
// refreshes an expired access token once (before the request when the
// token's expiry has passed, or after the PDS rejects it), and turns every
// non-2xx answer into an *XRPCError carrying the server's Retry-After.
type sessionAuth struct{ s *Session }

func (a sessionAuth) DoWithAuth(hc *http.Client, req *http.Request, endpoint syntax.NSID) (*http.Response, error) {
	s := a.s
	ctx := req.Context()
	cur := s.tokens()
	if !cur.ExpiresAt.IsZero() && time.Now().Add(s.c.opts.RefreshSkew).After(cur.ExpiresAt) {
		var err error
		if cur, err = s.refresh(ctx, cur); err != nil {
			return nil, err
		}
	}
	resp, err := s.send(hc, req, cur)
	if err != nil {
		return nil, err
	}
	if rejected, _ := tokenRejected(resp); rejected {
		drain(resp)
		fresh, err := s.refresh(ctx, cur)
		if err != nil {
			return nil, err
		}
		retry, err := cloneRequest(req)
		if err != nil {
			return nil, err
		}
		if resp, err = s.send(hc, retry, fresh); err != nil {
			return nil, err
		}
		if rejected, name := tokenRejected(resp); rejected {
			drain(resp)
			return nil, s.c.sessionExpired(s.id, "the PDS rejected the freshly refreshed access token ("+name+")")
		}
	}
	return checkStatus(endpoint, resp)
}

// send signs req with cur's access token: a bearer token, or for OAuth a
// DPoP proof, retried once when the PDS asks for a new DPoP nonce.
func (s *Session) send(hc *http.Client, req *http.Request, cur store.Session) (*http.Response, error) {
	if s.kind != store.SessionOAuth {
		req.Header.Set("Authorization", "Bearer "+cur.Tokens.AccessJWT)
		return hc.Do(req)
	}
	nonce := s.tokens().Tokens.DPoPNonce
	for attempt := 0; ; attempt++ {
		proof, err := s.hostDPoP(req.Method, req.URL, cur, nonce)
		if err != nil {
			return nil, fmt.Errorf("DPoP proof: %w", err)
		}
		req.Header.Set("Authorization", "DPoP "+cur.Tokens.AccessJWT)
		req.Header.Set("DPoP", proof)
		resp, err := hc.Do(req)
		if err != nil {
			return nil, err
		}
		fresh := resp.Header.Get("DPoP-Nonce")
		if fresh != "" && fresh != nonce {
			s.setNonce(fresh)
		}
		if attempt == 0 && fresh != "" && fresh != nonce && wantsNonce(resp) {
			drain(resp)
			nonce = fresh
			if req, err = cloneRequest(req); err != nil {
				return nil, err
			}
			continue
		}
		return resp, nil
	}
}

// hostDPoP makes the DPoP proof for a request to the PDS with indigo's
// oauth.ClientSession (htm, htu without query, ath, nonce).
func (s *Session) hostDPoP(method string, u *url.URL, cur store.Session, nonce string) (string, error) {
	cs := &oauth.ClientSession{
		Data: &oauth.ClientSessionData{
			AccessToken:   cur.Tokens.AccessJWT,
			AuthServerURL: cur.Tokens.AuthServer,
			DPoPHostNonce: nonce,
		},
		DPoPPrivateKey: s.dpopKey,
	}
	htu := *u
	htu.RawQuery, htu.ForceQuery, htu.Fragment, htu.RawFragment = "", false, "", ""
	return cs.NewHostDPoP(method, htu.String())
}

// wantsNonce reports a resource server's "use_dpop_nonce" challenge.
func wantsNonce(resp *http.Response) bool {
	if resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusBadRequest {
		return false
	}
	if strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="use_dpop_nonce"`) {
		return true
	}
	name, _ := peekError(resp)
	return name == "use_dpop_nonce"
}

// tokenRejected reports whether the PDS refused the access token as expired
// or invalid (so a refresh may help), with the XRPC error name. It leaves
// the body readable.
func tokenRejected(resp *http.Response) (bool, string) {
	if resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusBadRequest {
		return false, ""
	}
	if strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		return true, "invalid_token"
	}
	name, _ := peekError(resp)
	return name == "ExpiredToken" || name == "InvalidToken", name
}

// maxErrorBody bounds how much of an error answer is read.
const maxErrorBody = 64 << 10

// peekError parses an XRPC error body and puts the bytes back.
func peekError(resp *http.Response) (name, message string) {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	var eb atclient.ErrorBody
	if json.Unmarshal(b, &eb) != nil {
		return "", ""
	}
	return eb.Name, eb.Message
}

// checkStatus passes a 2xx response through and turns any other into an
// *XRPCError (closing the body).
func checkStatus(endpoint syntax.NSID, resp *http.Response) (*http.Response, error) {
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp, nil
	}
	name, msg := peekError(resp)
	resp.Body.Close()
	const maxMsg = 512
	if len(msg) > maxMsg {
		msg = msg[:maxMsg] + "…"
	}
	return nil, &XRPCError{
		Method:     endpoint.String(),
		Status:     resp.StatusCode,
		Name:       name,
		Message:    msg,
		RetryAfter: serverDelay(resp.Header, time.Now()),
	}
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
	resp.Body.Close()
}

// cloneRequest copies req for a second attempt, rewinding its body.
func cloneRequest(req *http.Request) (*http.Request, error) {
	r := req.Clone(req.Context())
	if req.Body == nil || req.Body == http.NoBody {
		return r, nil
	}
	if req.GetBody == nil {
		return nil, errors.New("pds: cannot resend a request whose body cannot be rewound")
	}
	body, err := req.GetBody()
	if err != nil {
		return nil, fmt.Errorf("pds: rewind request body: %w", err)
	}
	r.Body = body
	return r, nil
}

// bearerAuth authenticates with a fixed bearer token (a refresh token, or
// none when empty) and turns non-2xx answers into *XRPCError.
type bearerAuth string

func (b bearerAuth) DoWithAuth(hc *http.Client, req *http.Request, endpoint syntax.NSID) (*http.Response, error) {
	if b != "" {
		req.Header.Set("Authorization", "Bearer "+string(b))
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	return checkStatus(endpoint, resp)
}
