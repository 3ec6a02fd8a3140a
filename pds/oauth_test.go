package pds_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/bluesky-social/indigo/atproto/atcrypto"

	"github.com/plyr-fm/plyrtasks/job"
	"github.com/plyr-fm/plyrtasks/pds"
	"github.com/plyr-fm/plyrtasks/store"
	"github.com/plyr-fm/plyrtasks/store/storetest"
)

// oauthPDS is a PDS + authorization server implementing the DPoP wire
// contract (RFC 9449 as atproto OAuth uses it): nonces on both, an access
// token the resource server says is expired, and refresh-token rotation.
type oauthPDS struct {
	t   *testing.T
	srv *httptest.Server

	mu          sync.Mutex
	access      string // the access token the PDS accepts
	refresh     string // the refresh token the AS accepts
	refuse      bool   // refuse every refresh (revoked)
	tokenCalls  int
	putCalls    int
	proofErrors []string
}

const (
	hostNonce = "host-nonce-1"
	asNonce   = "as-nonce-1"
)

func newOAuthPDS(t *testing.T) *oauthPDS {
	p := &oauthPDS{t: t, access: "access-2", refresh: "refresh-1"}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /xrpc/com.atproto.repo.putRecord", p.put)
	mux.HandleFunc("POST /oauth/token", p.token)
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	return p
}

// proof decodes a DPoP proof's header and claims (the signature is not
// what these tests are about: indigo signs it).
func proof(t *testing.T, jwt string) (hdr, claims map[string]any) {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("DPoP proof %q is not a JWT", jwt)
	}
	for i, dst := range []*map[string]any{&hdr, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil || json.Unmarshal(b, dst) != nil {
			t.Fatalf("DPoP proof part %d: %v", i, err)
		}
	}
	return hdr, claims
}

func (p *oauthPDS) put(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.putCalls++
	hdr, claims := proof(p.t, r.Header.Get("DPoP"))
	if hdr["typ"] != "dpop+jwt" || claims["htm"] != "POST" || claims["htu"] != p.srv.URL+"/xrpc/com.atproto.repo.putRecord" {
		p.proofErrors = append(p.proofErrors, "bad proof")
	}
	if claims["nonce"] != hostNonce {
		w.Header().Set("DPoP-Nonce", hostNonce)
		w.Header().Set("WWW-Authenticate", `DPoP error="use_dpop_nonce"`)
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":"use_dpop_nonce"}`))
		return
	}
	tok := strings.TrimPrefix(r.Header.Get("Authorization"), "DPoP ")
	sum := sha256.Sum256([]byte(tok))
	if claims["ath"] != base64.RawURLEncoding.EncodeToString(sum[:]) {
		p.proofErrors = append(p.proofErrors, "ath does not match the access token")
	}
	if tok != p.access {
		w.Header().Set("WWW-Authenticate", `DPoP error="invalid_token", error_description="expired"`)
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":"invalid_token"}`))
		return
	}
	_, _ = w.Write([]byte(`{"uri":"at://did:plc:oauthuser/fm.plyr.like/3lenax2ss2222","cid":"bafyreiblqciteiicab6dfttolsuzwj344esf2scpp2lp5v2vfmnzkodorq"}`))
}

func (p *oauthPDS) token(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tokenCalls++
	_, claims := proof(p.t, r.Header.Get("DPoP"))
	if claims["nonce"] != asNonce {
		w.Header().Set("DPoP-Nonce", asNonce)
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"error":"use_dpop_nonce"}`))
		return
	}
	if err := r.ParseForm(); err != nil {
		p.t.Error(err)
	}
	if p.refuse || r.PostForm.Get("grant_type") != "refresh_token" || r.PostForm.Get("refresh_token") != p.refresh ||
		r.PostForm.Get("client_id") != "https://plyr.example/client-metadata.json" {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"error":"invalid_grant","error_description":"refresh token revoked"}`))
		return
	}
	p.refresh = "refresh-2"
	_, _ = w.Write([]byte(`{"access_token":"access-2","refresh_token":"refresh-2","token_type":"DPoP","scope":"atproto","sub":"did:plc:oauthuser"}`))
}

func oauthSession(t *testing.T, st store.Store, p *oauthPDS) store.Session {
	t.Helper()
	k, err := atcrypto.GeneratePrivateKeyP256()
	if err != nil {
		t.Fatal(err)
	}
	s := store.Session{
		ID: "oauth-1", DID: "did:plc:oauthuser", Handle: "o.test", PDSURL: p.srv.URL, Kind: store.SessionOAuth,
		Tokens: store.SessionTokens{
			AccessJWT: "access-1", RefreshJWT: "refresh-1", DPoPKey: k.Multibase(),
			AuthServer: p.srv.URL, ClientID: "https://plyr.example/client-metadata.json", TokenEndpoint: p.srv.URL + "/oauth/token",
		},
	}
	if err := st.SaveSession(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestATProtoOAuthSessionNonceAndRefresh(t *testing.T) {
	p := newOAuthPDS(t)
	st := storetest.SQLite(t)
	oauthSession(t, st, p)
	c, err := pds.New(pds.Options{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	sess, err := c.Session(ctx, "oauth-1")
	if err != nil {
		t.Fatal(err)
	}
	ref, err := sess.PutRecord(ctx, "fm.plyr.like", "3lenax2ss2222", map[string]any{"createdAt": "x"}, pds.Swap{})
	if err != nil {
		t.Fatal(err)
	}
	if ref.URI != "at://did:plc:oauthuser/fm.plyr.like/3lenax2ss2222" {
		t.Fatalf("ref = %+v", ref)
	}
	// put: no nonce → nonce; old token → refresh; new token → ok.
	if p.putCalls != 3 || p.tokenCalls != 2 || len(p.proofErrors) != 0 {
		t.Fatalf("put calls %d (want 3), token calls %d (want 2: nonce + refresh), proof errors %v", p.putCalls, p.tokenCalls, p.proofErrors)
	}
	got, _ := st.GetSession(ctx, "oauth-1")
	if got.Tokens.AccessJWT != "access-2" || got.Tokens.RefreshJWT != "refresh-2" || got.Tokens.DPoPKey == "" || got.Tokens.TokenEndpoint == "" {
		t.Fatalf("stored tokens after refresh = %+v", got.Tokens)
	}
	if c.Stats().Refreshes != 1 {
		t.Fatalf("Refreshes = %d", c.Stats().Refreshes)
	}
	// The learned nonce is reused: the next write is one request.
	before := p.putCalls
	if _, err := sess.PutRecord(ctx, "fm.plyr.like", "3lenax2ss2222", map[string]any{"createdAt": "x"}, pds.Swap{}); err != nil {
		t.Fatal(err)
	}
	if p.putCalls-before != 1 {
		t.Fatalf("second write took %d requests, want 1", p.putCalls-before)
	}
}

func TestATProtoOAuthRefusedRefreshIsSessionExpired(t *testing.T) {
	p := newOAuthPDS(t)
	p.refuse = true
	st := storetest.SQLite(t)
	oauthSession(t, st, p)
	c, _ := pds.New(pds.Options{Store: st})
	sess, err := c.Session(context.Background(), "oauth-1")
	if err != nil {
		t.Fatal(err)
	}
	_, err = sess.PutRecord(context.Background(), "fm.plyr.like", "3lenax2ss2222", map[string]any{"createdAt": "x"}, pds.Swap{})
	if !errors.Is(err, job.ErrSessionExpired) || !job.IsPermanent(err) || !strings.Contains(err.Error(), "HTTP 400") {
		t.Fatalf("err = %v, want a permanent session expired naming the HTTP 400", err)
	}
}

func TestATProtoOAuthRefreshOutageIsRetryable(t *testing.T) {
	p := newOAuthPDS(t)
	st := storetest.SQLite(t)
	s := oauthSession(t, st, p)
	s.Tokens.TokenEndpoint = "http://127.0.0.1:1/oauth/token" // nothing listens
	if err := st.SaveSession(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	c, _ := pds.New(pds.Options{Store: st})
	sess, _ := c.Session(context.Background(), "oauth-1")
	_, err := sess.PutRecord(context.Background(), "fm.plyr.like", "3lenax2ss2222", map[string]any{"createdAt": "x"}, pds.Swap{})
	if err == nil || errors.Is(err, job.ErrSessionExpired) || job.IsPermanent(pds.Classify(err)) {
		t.Fatalf("err = %v, want a retryable failure", err)
	}
}
