package pds

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/atproto/atclient"
	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/redis/go-redis/v9"

	"github.com/plyr-fm/plyrtasks/internal/rdb"
	"github.com/plyr-fm/plyrtasks/job"
	"github.com/plyr-fm/plyrtasks/store"
)

// Options configure a Client. Only Store is required.
type Options struct {
	// Store holds the sessions (tokens encrypted at rest).
	Store store.Store
	// Redis serialises refreshes of one session across worker processes.
	// Nil: refreshes are serialised within this process only (fine for a
	// single process; every multi-process deployment has Redis anyway).
	Redis redis.UniversalClient
	// Namespace prefixes the Redis lock keys (TASKS_NAMESPACE). Default "plyr".
	Namespace string
	// Timeout bounds one XRPC request (PDS_TIMEOUT). Default 30s.
	Timeout time.Duration
	// HTTPClient sends the requests. Default: a client with Timeout.
	HTTPClient *http.Client
	// RefreshSkew refreshes an access token this long before it expires,
	// so a request never races the expiry. Default 30s.
	RefreshSkew time.Duration
	// LockTTL is the lease of a refresh lock: longer than one refresh
	// request can take, short enough that a crashed holder does not stall
	// the session's other tasks for long. Default Timeout+5s, at least 10s.
	LockTTL time.Duration
	// LockWait is how long a refresher waits for another's lock before its
	// task gives up and retries later: a little over one lease, so a
	// crashed holder's lock has expired by then. Default LockTTL+5s.
	LockWait time.Duration
	// OAuth is the client identity used to refresh OAuth sessions.
	OAuth OAuthClient
	// UserAgent is sent with every request. Default "plyrtasks".
	UserAgent string
	// Logger receives refresh and expiry events (never tokens). Default:
	// discard.
	Logger *slog.Logger
	// OnRefresh is called after each successful token refresh this client
	// made (a metrics hook). Optional.
	OnRefresh func(sessionID string)
	// OnSessionExpired is called each time a session is found expired,
	// revoked or removed (a metrics hook). Optional.
	OnSessionExpired func(sessionID, reason string)
}

// OAuthClient is plyr.fm's OAuth client identity, for refreshing OAuth
// sessions (DPoP-bound tokens).
type OAuthClient struct {
	// ClientID is the client metadata URL, used when a session's stored
	// tokens carry no client_id.
	ClientID string
	// SecretKey is a confidential client's P-256 private key (multibase)
	// and KeyID its ID in the client's JWKS. Both empty: a public client.
	SecretKey string
	KeyID     string
}

// Stats counts a client's session events since it was made.
type Stats struct {
	Refreshes       int64 // token refreshes this client made
	SessionsExpired int64 // sessions found expired, revoked or removed
}

// Client opens sessions on users' PDSes. It is safe for concurrent use; make
// one per process.
type Client struct {
	opts      Options
	hc        *http.Client
	log       *slog.Logger
	clientKey atcrypto.PrivateKey // confidential OAuth client, nil if public
	locks     keyedMutex

	refreshes atomic.Int64
	expired   atomic.Int64
}

// New returns a Client with opts' defaults applied.
func New(opts Options) (*Client, error) {
	if opts.Store == nil {
		return nil, errors.New("pds: Options.Store is required")
	}
	if opts.Namespace == "" {
		opts.Namespace = "plyr"
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
	}
	if opts.RefreshSkew <= 0 {
		opts.RefreshSkew = 30 * time.Second
	}
	if opts.LockTTL <= 0 {
		opts.LockTTL = max(opts.Timeout+5*time.Second, 10*time.Second)
	}
	if opts.LockWait <= 0 {
		opts.LockWait = opts.LockTTL + 5*time.Second
	}
	if opts.UserAgent == "" {
		opts.UserAgent = "plyrtasks"
	}
	c := &Client{opts: opts, hc: opts.HTTPClient, log: opts.Logger}
	if c.hc == nil {
		c.hc = &http.Client{Timeout: opts.Timeout}
	}
	if c.log == nil {
		c.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.OAuth.SecretKey != "" {
		k, err := atcrypto.ParsePrivateMultibase(opts.OAuth.SecretKey)
		if err != nil {
			return nil, fmt.Errorf("pds: ATPROTO_OAUTH_CLIENT_SECRET_KEY: %w", err)
		}
		if _, ok := k.(*atcrypto.PrivateKeyP256); !ok {
			return nil, errors.New("pds: ATPROTO_OAUTH_CLIENT_SECRET_KEY must be a P-256 key")
		}
		if opts.OAuth.KeyID == "" {
			return nil, errors.New("pds: ATPROTO_OAUTH_CLIENT_KEY_ID is required with ATPROTO_OAUTH_CLIENT_SECRET_KEY")
		}
		c.clientKey = k
	}
	return c, nil
}

// Stats returns the client's counters.
func (c *Client) Stats() Stats {
	return Stats{Refreshes: c.refreshes.Load(), SessionsExpired: c.expired.Load()}
}

// Session loads session id from the store, ready to act as its user. A
// missing session is a permanent failure wrapping job.ErrSessionExpired.
func (c *Client) Session(ctx context.Context, id string) (*Session, error) {
	s, err := c.opts.Store.GetSession(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, c.sessionExpired(id, "no such session (logged out or removed)")
	case errors.Is(err, store.ErrNoEncryptionKey):
		// Retrying cannot help until the worker is configured: archive
		// with the variable to set.
		return nil, job.Permanent(fmt.Errorf("load session %s: %w", id, err))
	case err != nil:
		return nil, fmt.Errorf("load session %s: %w", id, err)
	}
	return c.newSession(s)
}

func (c *Client) newSession(s store.Session) (*Session, error) {
	did, err := syntax.ParseDID(s.DID)
	if err != nil {
		return nil, job.Permanent(fmt.Errorf("session %s: stored DID %q: %w", s.ID, s.DID, err))
	}
	host := strings.TrimRight(s.PDSURL, "/")
	if !strings.HasPrefix(host, "http://") && !strings.HasPrefix(host, "https://") {
		return nil, job.Permanent(fmt.Errorf("session %s: stored PDS URL %q is not an http(s) URL", s.ID, s.PDSURL))
	}
	sess := &Session{c: c, id: s.ID, did: did, handle: s.Handle, host: host, kind: s.Kind, cur: s}
	switch s.Kind {
	case store.SessionPassword:
	case store.SessionOAuth:
		key, err := parseDPoPKey(s.Tokens.DPoPKey)
		if err != nil {
			return nil, job.Permanent(fmt.Errorf("session %s: DPoP key: %w", s.ID, err))
		}
		sess.dpopKey = key
	default:
		return nil, job.Permanent(fmt.Errorf("session %s: unknown session kind %q", s.ID, s.Kind))
	}
	sess.api = &atclient.APIClient{
		Client:     c.hc,
		Host:       host,
		Auth:       sessionAuth{sess},
		Headers:    http.Header{"User-Agent": {c.opts.UserAgent}},
		AccountDID: &sess.did,
	}
	return sess, nil
}

// Login signs in to the PDS at pdsURL with a password or app password
// (com.atproto.server.createSession), stores the new password session and
// returns it (with a fresh random ID). The password is not kept.
func (c *Client) Login(ctx context.Context, pdsURL, identifier, password string) (store.Session, error) {
	host := strings.TrimRight(strings.TrimSpace(pdsURL), "/")
	if !strings.HasPrefix(host, "http://") && !strings.HasPrefix(host, "https://") {
		return store.Session{}, fmt.Errorf("pds: PDS URL %q must be an http(s) URL", pdsURL)
	}
	api := c.plainAPI(host, "")
	out, err := atproto.ServerCreateSession(ctx, api, &atproto.ServerCreateSession_Input{Identifier: identifier, Password: password})
	if err != nil {
		return store.Session{}, fmt.Errorf("pds: log in to %s as %s: %w", host, identifier, err)
	}
	if _, err := syntax.ParseDID(out.Did); err != nil {
		return store.Session{}, fmt.Errorf("pds: createSession returned DID %q: %w", out.Did, err)
	}
	id, err := newSessionID()
	if err != nil {
		return store.Session{}, err
	}
	s := store.Session{
		ID:        id,
		DID:       out.Did,
		Handle:    out.Handle,
		PDSURL:    host,
		Kind:      store.SessionPassword,
		Tokens:    store.SessionTokens{AccessJWT: out.AccessJwt, RefreshJWT: out.RefreshJwt},
		ExpiresAt: jwtExpiry(out.AccessJwt),
	}
	if err := c.opts.Store.SaveSession(ctx, s); err != nil {
		return store.Session{}, fmt.Errorf("pds: store session: %w", err)
	}
	return s, nil
}

// plainAPI is an XRPC client for host authenticated with bearer (or not at
// all when empty), whose non-2xx answers become *XRPCError.
func (c *Client) plainAPI(host, bearer string) *atclient.APIClient {
	return &atclient.APIClient{
		Client:  c.hc,
		Host:    host,
		Auth:    bearerAuth(bearer),
		Headers: http.Header{"User-Agent": {c.opts.UserAgent}},
	}
}

// sessionExpired counts and logs an expired session and returns the
// permanent error the task fails with.
func (c *Client) sessionExpired(id, reason string) error {
	c.expired.Add(1)
	c.log.Warn("pds: session expired", "session_id", id, "reason", reason)
	if c.opts.OnSessionExpired != nil {
		c.opts.OnSessionExpired(id, reason)
	}
	return job.Permanent(&SessionExpiredError{SessionID: id, Reason: reason})
}

func newSessionID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("pds: session id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// keyedMutex is a mutex per key, dropped when nobody holds or waits on it.
// Goroutines of one process that refresh the same session queue here rather
// than polling the Redis lock.
type keyedMutex struct {
	mu    sync.Mutex
	locks map[string]*keyedEntry
}

type keyedEntry struct {
	ch   chan struct{} // buffered(1): holding = a value sent
	refs int
}

// lock takes key's mutex or returns ctx's error.
func (k *keyedMutex) lock(ctx context.Context, key string) (func(), error) {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = map[string]*keyedEntry{}
	}
	e := k.locks[key]
	if e == nil {
		e = &keyedEntry{ch: make(chan struct{}, 1)}
		k.locks[key] = e
	}
	e.refs++
	k.mu.Unlock()

	done := func() {
		k.mu.Lock()
		e.refs--
		if e.refs == 0 {
			delete(k.locks, key)
		}
		k.mu.Unlock()
	}
	select {
	case e.ch <- struct{}{}:
		return func() { <-e.ch; done() }, nil
	case <-ctx.Done():
		done()
		return nil, ctx.Err()
	}
}

// lockSession serialises refreshes of session id: in this process, then
// across processes through Redis when configured.
func (c *Client) lockSession(ctx context.Context, id string) (func(), error) {
	unlockLocal, err := c.locks.lock(ctx, id)
	if err != nil {
		return nil, err
	}
	if c.opts.Redis == nil {
		return unlockLocal, nil
	}
	key := rdb.SessionLockKey(c.opts.Namespace, id)
	l, err := rdb.LockSession(ctx, c.opts.Redis, key, c.opts.LockTTL, c.opts.LockWait, 25*time.Millisecond)
	if err != nil {
		unlockLocal()
		return nil, err
	}
	return func() {
		// A fresh context: the task's may be done, and a lock left behind
		// would stall the session's other tasks for a whole lease.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := l.Unlock(ctx); err != nil {
			c.log.Warn("pds: release session lock", "session_id", id, "err", err)
		}
		unlockLocal()
	}, nil
}
