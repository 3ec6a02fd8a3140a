package pds_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/plyr-fm/plyrtasks/internal/redistest"
	"github.com/plyr-fm/plyrtasks/job"
	"github.com/plyr-fm/plyrtasks/pds"
	"github.com/plyr-fm/plyrtasks/pds/pdstest"
	"github.com/plyr-fm/plyrtasks/store"
	"github.com/plyr-fm/plyrtasks/store/storetest"
)

var redisSrv *redistest.Server

func TestMain(m *testing.M) { os.Exit(redistest.MustMain(m, &redisSrv)) }

// env is one test's world: the real PDS behind a counting proxy, a store,
// and a Redis database.
type env struct {
	pdsURL string
	proxy  *pdstest.Proxy
	st     store.Store
	rdb    *redis.Client
}

func newEnv(t *testing.T) *env {
	t.Helper()
	u := pdstest.URL(t)
	return &env{pdsURL: u, proxy: pdstest.NewProxy(t, u), st: storetest.SQLite(t), rdb: redisSrv.Client(t, redisSrv.DB(t))}
}

func (e *env) client(t *testing.T, o pds.Options) *pds.Client {
	t.Helper()
	o.Store, o.Redis = e.st, e.rdb
	c, err := pds.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// login makes an account and stores a password session for it that talks
// to the PDS through the proxy.
func (e *env) login(t *testing.T, c *pds.Client) (pdstest.Account, store.Session) {
	t.Helper()
	a := pdstest.NewAccount(t, e.pdsURL)
	s, err := c.Login(context.Background(), e.proxy.URL, a.Handle, a.Password)
	if err != nil {
		t.Fatal(err)
	}
	return a, s
}

// expireAccess marks the stored access token as past its expiry, as it is
// hours after login.
func (e *env) expireAccess(t *testing.T, id string) store.Session {
	t.Helper()
	ctx := context.Background()
	s, err := e.st.GetSession(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	ok, err := e.st.UpdateSessionTokens(ctx, id, s.Tokens.RefreshJWT, s.Tokens, time.Now().Add(-time.Minute))
	if err != nil || !ok {
		t.Fatalf("force expiry: %v %v", ok, err)
	}
	return s
}

const likeCol = "fm.plyr.like"

func like(i int) pds.LikeRecord {
	return pds.LikeRecord{Subject: pds.StrongRef{URI: fmt.Sprintf("at://did:plc:artist/fm.plyr.track/t%d", i), CID: "bafyreiblqciteiicab6dfttolsuzwj344esf2scpp2lp5v2vfmnzkodorq"}, CreatedAt: "2025-01-01T00:00:00.000Z"}
}

func TestATProtoLoginAndRecordRoundTrip(t *testing.T) {
	e := newEnv(t)
	c := e.client(t, pds.Options{})
	ctx := context.Background()
	acct, stored := e.login(t, c)

	if stored.DID != acct.DID || stored.Handle != acct.Handle || stored.Kind != store.SessionPassword || stored.PDSURL != e.proxy.URL {
		t.Fatalf("stored session = %+v", stored)
	}
	if d := time.Until(stored.ExpiresAt); d < time.Minute || d > 24*time.Hour {
		t.Fatalf("ExpiresAt %s is not read from the access JWT", stored.ExpiresAt)
	}
	sess, err := c.Session(ctx, stored.ID)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := sess.PutRecord(ctx, likeCol, "3lenax2ss2222", like(1), pds.Swap{})
	if err != nil {
		t.Fatal(err)
	}
	if want := "at://" + acct.DID + "/" + likeCol + "/3lenax2ss2222"; ref.URI != want || ref.CID == "" {
		t.Fatalf("ref = %+v, want URI %s", ref, want)
	}
	got, ok := pdstest.GetRecord(t, e.pdsURL, acct.DID, likeCol, "3lenax2ss2222")
	if !ok || got.CID != ref.CID {
		t.Fatalf("getRecord = %+v, %v", got, ok)
	}
	if f := got.Fields(t); f["$type"] != likeCol || f["createdAt"] != "2025-01-01T00:00:00.000Z" ||
		f["subject"].(map[string]any)["uri"] != "at://did:plc:artist/fm.plyr.track/t1" || len(f) != 3 {
		t.Fatalf("record fields = %v", f)
	}

	// Our own read path agrees.
	rec, err := sess.GetRecord(ctx, likeCol, "3lenax2ss2222")
	if err != nil || rec.CID != ref.CID || rec.RKey() != "3lenax2ss2222" {
		t.Fatalf("GetRecord = %+v, %v", rec, err)
	}
	if _, err := sess.GetRecord(ctx, likeCol, "3lenax2ss2223"); !errors.Is(err, pds.ErrRecordNotFound) {
		t.Fatalf("missing record: err = %v, want ErrRecordNotFound", err)
	}

	// The same content again is the same record; a second key is a second.
	if _, err := sess.PutRecord(ctx, likeCol, "3lenax2ss2222", like(1), pds.Swap{}); err != nil {
		t.Fatal(err)
	}
	if _, err := sess.PutRecord(ctx, likeCol, "3lenax2ss2232", like(2), pds.Swap{}); err != nil {
		t.Fatal(err)
	}
	list, err := sess.ListRecords(ctx, likeCol, 0)
	if err != nil || len(list) != 2 {
		t.Fatalf("ListRecords = %d records, %v; want 2", len(list), err)
	}
	if n := len(pdstest.ListRecords(t, e.pdsURL, acct.DID, likeCol)); n != 2 {
		t.Fatalf("listRecords on the PDS = %d, want 2", n)
	}

	if err := sess.DeleteRecord(ctx, likeCol, "3lenax2ss2222"); err != nil {
		t.Fatal(err)
	}
	// Deleting what is already gone succeeds.
	if err := sess.DeleteRecord(ctx, likeCol, "3lenax2ss2222"); err != nil {
		t.Fatalf("second delete: %v", err)
	}
	if _, ok := pdstest.GetRecord(t, e.pdsURL, acct.DID, likeCol, "3lenax2ss2222"); ok {
		t.Fatal("record still there after delete")
	}
}

func TestATProtoPutRecordCompareAndSwap(t *testing.T) {
	e := newEnv(t)
	c := e.client(t, pds.Options{})
	ctx := context.Background()
	_, stored := e.login(t, c)
	sess, err := c.Session(ctx, stored.ID)
	if err != nil {
		t.Fatal(err)
	}
	first, err := sess.PutRecord(ctx, likeCol, "3lenax2ss2222", like(1), pds.IfMissing())
	if err != nil {
		t.Fatalf("IfMissing on an empty key: %v", err)
	}
	if _, err := sess.PutRecord(ctx, likeCol, "3lenax2ss2222", like(2), pds.IfMissing()); !pds.IsInvalidSwap(err) {
		t.Fatalf("IfMissing on an existing record: err = %v, want InvalidSwap", err)
	}
	second, err := sess.PutRecord(ctx, likeCol, "3lenax2ss2222", like(2), pds.IfCID(first.CID))
	if err != nil {
		t.Fatalf("IfCID(current): %v", err)
	}
	if _, err := sess.PutRecord(ctx, likeCol, "3lenax2ss2222", like(3), pds.IfCID(first.CID)); !pds.IsInvalidSwap(err) {
		t.Fatalf("IfCID(stale): err = %v, want InvalidSwap", err)
	}
	// A failed swap is permanent if it ever reaches the classifier: the
	// caller is meant to re-read instead.
	if _, err := sess.PutRecord(ctx, likeCol, "3lenax2ss2222", like(3), pds.IfCID(first.CID)); !job.IsPermanent(pds.Classify(err)) {
		t.Fatalf("InvalidSwap classified as retryable: %v", err)
	}
	rec, _ := sess.GetRecord(ctx, likeCol, "3lenax2ss2222")
	if rec.CID != second.CID {
		t.Fatalf("record at %s, want %s", rec.CID, second.CID)
	}
}

func TestATProtoWrongTypeIsRefusedBeforeTheRequest(t *testing.T) {
	e := newEnv(t)
	c := e.client(t, pds.Options{})
	_, stored := e.login(t, c)
	sess, _ := c.Session(context.Background(), stored.ID)
	before := e.proxy.Count("com.atproto.repo.putRecord")
	_, err := sess.PutRecord(context.Background(), likeCol, "3lenax2ss2222", map[string]any{"$type": "fm.plyr.list"}, pds.Swap{})
	if err == nil || !strings.Contains(err.Error(), "must equal the collection") {
		t.Fatalf("err = %v", err)
	}
	if e.proxy.Count("com.atproto.repo.putRecord") != before {
		t.Fatal("a record with the wrong $type was sent")
	}
}

// Several tasks in two worker processes (two Clients sharing Redis) find
// the session's access token expired at once: exactly one refresh reaches
// the PDS, every write succeeds, and the store keeps the rotated tokens.
func TestATProtoConcurrentRefreshHappensOnce(t *testing.T) {
	for _, mode := range []string{"expiry passed", "token rejected by the PDS"} {
		t.Run(mode, func(t *testing.T) {
			e := newEnv(t)
			var refreshed atomic.Int64
			opts := pds.Options{OnRefresh: func(string) { refreshed.Add(1) }}
			workers := []*pds.Client{e.client(t, opts), e.client(t, opts)}
			ctx := context.Background()
			acct, stored := e.login(t, workers[0])
			old := stored
			if mode == "expiry passed" {
				old = e.expireAccess(t, stored.ID)
			} else {
				// The PDS says the access token is expired although its exp
				// claim is in the future (clock skew, server-side revocation).
				e.proxy.Add(pdstest.RejectTokenUntilRefresh(stored.Tokens.AccessJWT))
			}

			const tasks = 12
			var wg sync.WaitGroup
			errs := make(chan error, tasks)
			start := make(chan struct{})
			for i := range tasks {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					sess, err := workers[i%2].Session(ctx, stored.ID)
					if err != nil {
						errs <- err
						return
					}
					_, err = sess.PutRecord(ctx, likeCol, pds.TID(time.Unix(1700000000, 0), int64(i)), like(i), pds.Swap{})
					errs <- err
				}()
			}
			close(start)
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			if n := e.proxy.Count("com.atproto.server.refreshSession"); n != 1 {
				t.Fatalf("refreshSession reached the PDS %d times, want 1", n)
			}
			if n := refreshed.Load(); n != 1 {
				t.Fatalf("OnRefresh called %d times, want 1", n)
			}
			if s := workers[0].Stats().Refreshes + workers[1].Stats().Refreshes; s != 1 {
				t.Fatalf("Stats().Refreshes total %d, want 1", s)
			}
			now, err := e.st.GetSession(ctx, stored.ID)
			if err != nil {
				t.Fatal(err)
			}
			// (The access token can be byte-identical when issued within the
			// same second; the refresh token carries a fresh jti.)
			if now.Tokens.RefreshJWT == old.Tokens.RefreshJWT {
				t.Fatal("the store still has the old tokens")
			}
			if !now.ExpiresAt.After(time.Now()) {
				t.Fatalf("stored expiry %s is not in the future", now.ExpiresAt)
			}
			if n := len(pdstest.ListRecords(t, e.pdsURL, acct.DID, likeCol)); n != tasks {
				t.Fatalf("%d records written, want %d", n, tasks)
			}
			// The old refresh token is spent: the next refresh uses the new one.
			e.expireAccess(t, stored.ID)
			sess, _ := workers[1].Session(ctx, stored.ID)
			if _, err := sess.PutRecord(ctx, likeCol, "3lenax2ss2222", like(99), pds.Swap{}); err != nil {
				t.Fatalf("write after a second refresh: %v", err)
			}
			if n := e.proxy.Count("com.atproto.server.refreshSession"); n != 2 {
				t.Fatalf("refreshSession count %d, want 2", n)
			}
		})
	}
}

func TestATProtoRevokedSessionIsExpired(t *testing.T) {
	e := newEnv(t)
	var reasons []string
	var mu sync.Mutex
	c := e.client(t, pds.Options{OnSessionExpired: func(id, reason string) {
		mu.Lock()
		defer mu.Unlock()
		reasons = append(reasons, id+": "+reason)
	}})
	ctx := context.Background()
	_, stored := e.login(t, c)
	pdstest.RevokeSession(t, e.pdsURL, stored.Tokens.RefreshJWT) // user logged out elsewhere
	e.expireAccess(t, stored.ID)

	sess, err := c.Session(ctx, stored.ID)
	if err != nil {
		t.Fatal(err)
	}
	_, err = sess.PutRecord(ctx, likeCol, "3lenax2ss2222", like(1), pds.Swap{})
	if !errors.Is(err, job.ErrSessionExpired) || !job.IsPermanent(err) {
		t.Fatalf("err = %v, want a permanent ErrSessionExpired", err)
	}
	if !strings.Contains(err.Error(), "session expired") || !strings.Contains(err.Error(), "ExpiredToken") {
		t.Fatalf("reason %q does not say why", err)
	}
	if got := c.Stats().SessionsExpired; got != 1 {
		t.Fatalf("SessionsExpired = %d, want 1", got)
	}
	if len(reasons) != 1 || !strings.HasPrefix(reasons[0], stored.ID+": ") {
		t.Fatalf("OnSessionExpired calls = %q", reasons)
	}
	if n := e.proxy.Count("com.atproto.repo.putRecord"); n != 0 {
		t.Fatalf("putRecord sent %d times with a dead session", n)
	}
}

func TestATProtoMissingSessionIsExpired(t *testing.T) {
	e := newEnv(t)
	c := e.client(t, pds.Options{})
	_, err := c.Session(context.Background(), "no-such-session")
	if !errors.Is(err, job.ErrSessionExpired) || !job.IsPermanent(err) || !strings.Contains(err.Error(), "no such session") {
		t.Fatalf("err = %v", err)
	}

	// A session removed (logout) while its token needed a refresh.
	_, stored := e.login(t, c)
	e.expireAccess(t, stored.ID)
	sess, err := c.Session(context.Background(), stored.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.st.DeleteSession(context.Background(), stored.ID); err != nil {
		t.Fatal(err)
	}
	_, err = sess.PutRecord(context.Background(), likeCol, "3lenax2ss2222", like(1), pds.Swap{})
	if !errors.Is(err, job.ErrSessionExpired) || !strings.Contains(err.Error(), "removed") {
		t.Fatalf("err = %v", err)
	}
	if c.Stats().SessionsExpired != 2 {
		t.Fatalf("SessionsExpired = %d, want 2", c.Stats().SessionsExpired)
	}
}

func TestATProtoServerErrorsAreRetryable(t *testing.T) {
	e := newEnv(t)
	c := e.client(t, pds.Options{})
	ctx := context.Background()
	acct, stored := e.login(t, c)
	sess, _ := c.Session(ctx, stored.ID)

	e.proxy.Add(pdstest.FailTimes("com.atproto.repo.putRecord", 1, pdstest.ServerError()))
	_, err := sess.PutRecord(ctx, likeCol, "3lenax2ss2222", like(1), pds.Swap{})
	var xe *pds.XRPCError
	if !errors.As(err, &xe) || xe.Status != http.StatusBadGateway || job.IsPermanent(pds.Classify(err)) {
		t.Fatalf("err = %v, want a retryable 502", err)
	}
	if _, err := sess.PutRecord(ctx, likeCol, "3lenax2ss2222", like(1), pds.Swap{}); err != nil {
		t.Fatalf("retry: %v", err)
	}

	e.proxy.Add(pdstest.FailTimes("com.atproto.repo.putRecord", 1, pdstest.Fault{
		Status: http.StatusTooManyRequests, Header: http.Header{"Retry-After": {"7"}},
		Body: `{"error":"RateLimitExceeded","message":"Rate Limit Exceeded"}`}))
	_, err = sess.PutRecord(ctx, likeCol, "3lenax2ss2222", like(1), pds.Swap{})
	var ra *job.RetryAfterError
	if !errors.As(pds.Classify(err), &ra) || ra.After != 7*time.Second {
		t.Fatalf("429: classified as %v, want RetryAfter(7s)", pds.Classify(err))
	}
	if n := len(pdstest.ListRecords(t, e.pdsURL, acct.DID, likeCol)); n != 1 {
		t.Fatalf("%d records, want 1", n)
	}
}

func TestATProtoListRecordsPaginates(t *testing.T) {
	e := newEnv(t)
	c := e.client(t, pds.Options{})
	ctx := context.Background()
	_, stored := e.login(t, c)
	sess, _ := c.Session(ctx, stored.ID)
	const n = 105
	for i := range n {
		if _, err := sess.PutRecord(ctx, likeCol, pds.TID(time.Unix(1700000000+int64(i), 0), 0), like(i), pds.Swap{}); err != nil {
			t.Fatal(err)
		}
	}
	all, err := sess.ListRecords(ctx, likeCol, 0)
	if err != nil || len(all) != n {
		t.Fatalf("ListRecords = %d, %v; want %d", len(all), err, n)
	}
	if all[0].RKey() != pds.TID(time.Unix(1700000000+n-1, 0), 0) {
		t.Fatalf("first record %s is not the newest", all[0].RKey())
	}
	some, err := sess.ListRecords(ctx, likeCol, 3)
	if err != nil || len(some) != 3 {
		t.Fatalf("ListRecords(limit 3) = %d, %v", len(some), err)
	}
}
