package pds

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"

	"github.com/plyr-fm/plyrtasks/job"
)

func TestATProtoTID(t *testing.T) {
	// Expected keys come from plyr.fm's own datetime_to_tid (Python),
	// computed independently of this package.
	cases := []struct {
		at    time.Time
		clock int64
		want  string
	}{
		{time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), 0, "3lenax2ss2222"},
		{time.Date(2025, 6, 15, 12, 30, 45, 123456000, time.UTC), 7, "3lrnhtgamg22b"},
		{time.Date(2025, 6, 15, 12, 30, 45, 123456000, time.UTC), 1023, "3lrnhtgamg2zz"},
		// The clock is the ID mod 1024: 1031 and 7 give the same key.
		{time.Date(2025, 6, 15, 12, 30, 45, 123456000, time.UTC), 1031, "3lrnhtgamg22b"},
		// Time zones do not matter, only the instant.
		{time.Date(2025, 6, 15, 14, 30, 45, 123456000, time.FixedZone("CEST", 2*3600)), 7, "3lrnhtgamg22b"},
	}
	for _, c := range cases {
		t.Run(fmt.Sprint(c.at, c.clock), func(t *testing.T) {
			got := TID(c.at, c.clock)
			if got != c.want {
				t.Fatalf("TID(%s, %d) = %s, want %s", c.at, c.clock, got, c.want)
			}
			back, err := TIDTime(got)
			if err != nil || !back.Equal(c.at.Truncate(time.Microsecond)) {
				t.Fatalf("TIDTime(%s) = %s, %v; want %s", got, back, err, c.at)
			}
			clock, ok := TIDClock(got)
			if !ok || clock != uint(c.clock%1024) {
				t.Fatalf("TIDClock(%s) = %d, %v; want %d", got, clock, ok, c.clock%1024)
			}
		})
	}
	if _, ok := TIDClock("self"); ok {
		t.Fatal(`TIDClock("self") reported a TID`)
	}
}

func TestATProtoClassify(t *testing.T) {
	netErr := &url.Error{Op: "Post", URL: "http://pds/xrpc/x", Err: &net.OpError{Op: "dial", Err: errors.New("connection refused")}}
	cases := []struct {
		name       string
		err        error
		permanent  bool
		retryAfter time.Duration // 0: plain retry (no RetryAfterError)
		expired    bool
		contains   string
	}{
		{name: "network error retries", err: netErr, contains: "connection refused"},
		{name: "500 retries", err: &XRPCError{Method: "m", Status: 500, Name: "InternalServerError"}},
		{name: "502 retries", err: &XRPCError{Method: "m", Status: 502}},
		{name: "503 with Retry-After waits", err: &XRPCError{Method: "m", Status: 503, RetryAfter: 7 * time.Second}, retryAfter: 7 * time.Second},
		{name: "408 retries", err: &XRPCError{Method: "m", Status: 408}},
		{name: "429 waits for the server's delay", err: &XRPCError{Method: "m", Status: 429, Name: "RateLimitExceeded", RetryAfter: 12 * time.Second}, retryAfter: 12 * time.Second},
		{name: "429 without a delay waits the default", err: &XRPCError{Method: "m", Status: 429}, retryAfter: DefaultRateLimitDelay},
		{name: "400 is permanent with the XRPC reason", err: fmt.Errorf("put: %w", &XRPCError{Method: "com.atproto.repo.putRecord", Status: 400, Name: "InvalidRequest", Message: "Invalid $type"}),
			permanent: true, contains: "com.atproto.repo.putRecord: HTTP 400 InvalidRequest: Invalid $type"},
		{name: "403 is permanent", err: &XRPCError{Method: "m", Status: 403, Name: "Forbidden"}, permanent: true},
		{name: "expired session is permanent", err: &SessionExpiredError{SessionID: "s1", Reason: "revoked"}, permanent: true, expired: true, contains: "session expired: revoked (session s1)"},
		{name: "permanent stays permanent", err: job.Permanent(errors.New("bad payload")), permanent: true, contains: "bad payload"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Classify(c.err)
			if job.IsPermanent(got) != c.permanent {
				t.Fatalf("permanent = %v, want %v (%v)", job.IsPermanent(got), c.permanent, got)
			}
			var ra *job.RetryAfterError
			isRA := errors.As(got, &ra)
			if c.retryAfter == 0 && isRA {
				t.Fatalf("got RetryAfter(%s), want a plain retry", ra.After)
			}
			if c.retryAfter != 0 && (!isRA || ra.After != c.retryAfter) {
				t.Fatalf("got %v, want RetryAfter(%s)", got, c.retryAfter)
			}
			if errors.Is(got, job.ErrSessionExpired) != c.expired {
				t.Fatalf("errors.Is(ErrSessionExpired) = %v, want %v", !c.expired, c.expired)
			}
			if !strings.Contains(got.Error(), c.contains) {
				t.Fatalf("error %q does not contain %q", got, c.contains)
			}
		})
	}
	if Classify(nil) != nil {
		t.Fatal("Classify(nil) != nil")
	}
}

func TestATProtoXRPCErrorMatches(t *testing.T) {
	nf := fmt.Errorf("get: %w", &XRPCError{Status: 400, Name: "RecordNotFound"})
	if !errors.Is(nf, ErrRecordNotFound) {
		t.Fatal("RecordNotFound does not match ErrRecordNotFound")
	}
	if errors.Is(&XRPCError{Status: 400, Name: "InvalidSwap"}, ErrRecordNotFound) {
		t.Fatal("InvalidSwap matches ErrRecordNotFound")
	}
	if !IsInvalidSwap(fmt.Errorf("x: %w", &XRPCError{Status: 400, Name: "InvalidSwap"})) || IsInvalidSwap(nf) {
		t.Fatal("IsInvalidSwap is wrong")
	}
}

func TestATProtoServerDelay(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	cases := []struct {
		name string
		h    http.Header
		want time.Duration
	}{
		{"none", http.Header{}, 0},
		{"Retry-After seconds", http.Header{"Retry-After": {"42"}}, 42 * time.Second},
		{"Retry-After date", http.Header{"Retry-After": {now.Add(90 * time.Second).Format(http.TimeFormat)}}, 90 * time.Second},
		{"Retry-After in the past", http.Header{"Retry-After": {now.Add(-time.Minute).Format(http.TimeFormat)}}, 0},
		{"RateLimit-Reset epoch", http.Header{"Ratelimit-Reset": {fmt.Sprint(now.Add(17 * time.Second).Unix())}}, 17 * time.Second},
		{"Retry-After wins over RateLimit-Reset", http.Header{"Retry-After": {"3"}, "Ratelimit-Reset": {fmt.Sprint(now.Add(time.Hour).Unix())}}, 3 * time.Second},
		{"capped at an hour", http.Header{"Retry-After": {"86400"}}, time.Hour},
		{"garbage", http.Header{"Retry-After": {"soon"}}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := serverDelay(c.h, now); got != c.want {
				t.Fatalf("serverDelay = %s, want %s", got, c.want)
			}
		})
	}
}

func TestATProtoEncodeRecord(t *testing.T) {
	cases := []struct {
		name    string
		record  any
		want    string
		wantErr string
	}{
		{name: "sets $type", record: LikeRecord{Subject: StrongRef{URI: "at://did:plc:a/fm.plyr.track/1", CID: "bafy1"}, CreatedAt: "2025-01-01T00:00:00.000Z"},
			want: `{"$type":"fm.plyr.like","createdAt":"2025-01-01T00:00:00.000Z","subject":{"cid":"bafy1","uri":"at://did:plc:a/fm.plyr.track/1"}}`},
		{name: "keeps a matching $type", record: map[string]any{"$type": "fm.plyr.like", "createdAt": "x"}, want: `{"$type":"fm.plyr.like","createdAt":"x"}`},
		{name: "big integers survive", record: map[string]any{"n": int64(9007199254740993)}, want: `{"$type":"fm.plyr.like","n":9007199254740993}`},
		{name: "refuses another $type", record: map[string]any{"$type": "fm.plyr.list"}, wantErr: "must equal the collection"},
		{name: "refuses a non-object", record: []int{1}, wantErr: "not a JSON object"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := EncodeRecord("fm.plyr.like", c.record)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err = %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil || string(got) != c.want {
				t.Fatalf("EncodeRecord = %s, %v; want %s", got, err, c.want)
			}
		})
	}
}

func TestATProtoRecordShapes(t *testing.T) {
	dur := 215
	cases := []struct {
		name   string
		col    string
		record any
		want   string
	}{
		{"play", "fm.teal.feed.play", PlayRecord{PlayView: PlayView{
			TrackName: "Song", Artists: []PlayArtist{{ArtistName: "Band"}}, Duration: &dur, ReleaseName: "LP",
			PlayedTime: "2025-06-15T12:30:45.123Z", OriginURL: "https://plyr.fm/track/5", MusicServiceBaseDomain: "plyr.fm", SubmissionClientAgent: "plyr.fm/1.0"}},
			`{"$type":"fm.teal.feed.play","artists":[{"artistName":"Band"}],"duration":215,"musicServiceBaseDomain":"plyr.fm","originUrl":"https://plyr.fm/track/5","playedTime":"2025-06-15T12:30:45.123Z","releaseName":"LP","submissionClientAgent":"plyr.fm/1.0","trackName":"Song"}`},
		{"play without optional fields", "fm.teal.feed.play", PlayRecord{PlayView: PlayView{TrackName: "S", Artists: []PlayArtist{{ArtistName: "B"}}, PlayedTime: "t"}},
			`{"$type":"fm.teal.feed.play","artists":[{"artistName":"B"}],"playedTime":"t","trackName":"S"}`},
		{"status", "fm.teal.actor.status", StatusRecord{Time: "t0", Expiry: "t1", Item: PlayView{TrackName: "S", Artists: []PlayArtist{{ArtistName: "B"}}, PlayedTime: "t0"}},
			`{"$type":"fm.teal.actor.status","expiry":"t1","item":{"artists":[{"artistName":"B"}],"playedTime":"t0","trackName":"S"},"time":"t0"}`},
		{"comment", "fm.plyr.comment", CommentRecord{Subject: StrongRef{URI: "u", CID: "c"}, Text: "hi", TimestampMs: 0, CreatedAt: "t"},
			`{"$type":"fm.plyr.comment","createdAt":"t","subject":{"cid":"c","uri":"u"},"text":"hi","timestampMs":0}`},
		{"list", "fm.plyr.list", ListRecord{Name: "Liked Tracks", ListType: ListTypeLiked, Items: []ListItem{{Subject: StrongRef{URI: "u1", CID: "c1"}}}, CreatedAt: "t"},
			`{"$type":"fm.plyr.list","createdAt":"t","items":[{"subject":{"cid":"c1","uri":"u1"}}],"listType":"liked","name":"Liked Tracks"}`},
		{"empty list keeps items", "fm.plyr.list", ListRecord{CreatedAt: "t"}, `{"$type":"fm.plyr.list","createdAt":"t","items":null}`},
		{"profile", "fm.plyr.actor.profile", ProfileRecord{CreatedAt: "t"}, `{"$type":"fm.plyr.actor.profile","createdAt":"t"}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := EncodeRecord(c.col, c.record)
			if err != nil || string(got) != c.want {
				t.Fatalf("got %s, %v\nwant %s", got, err, c.want)
			}
		})
	}
}

func TestATProtoDatetime(t *testing.T) {
	at := time.Date(2025, 6, 15, 14, 30, 45, 123456789, time.FixedZone("CEST", 2*3600))
	if got := Datetime(at); got != "2025-06-15T12:30:45.123Z" {
		t.Fatalf("Datetime = %s", got)
	}
}

func fakeJWT(claims string) string {
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(`{"alg":"HS256"}`)) + "." + enc.EncodeToString([]byte(claims)) + ".sig"
}

func TestATProtoJWTExpiry(t *testing.T) {
	cases := []struct {
		name  string
		token string
		want  time.Time
	}{
		{"exp", fakeJWT(`{"sub":"did:plc:a","exp":1796335346}`), time.Unix(1796335346, 0).UTC()},
		{"no exp", fakeJWT(`{"sub":"did:plc:a"}`), time.Time{}},
		{"not a JWT", "opaque-token", time.Time{}},
		{"bad base64", "a.!!!.c", time.Time{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := jwtExpiry(c.token); !got.Equal(c.want) {
				t.Fatalf("jwtExpiry = %s, want %s", got, c.want)
			}
		})
	}
}

func TestATProtoParseDPoPKey(t *testing.T) {
	k, err := atcrypto.GeneratePrivateKeyP256()
	if err != nil {
		t.Fatal(err)
	}
	jwk, _ := json.Marshal(map[string]string{"kty": "EC", "crv": "P-256", "d": base64.RawURLEncoding.EncodeToString(k.Bytes())})
	for name, s := range map[string]string{"multibase": k.Multibase(), "jwk": string(jwk)} {
		t.Run(name, func(t *testing.T) {
			got, err := parseDPoPKey(s)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equal(k) {
				t.Fatal("parsed a different key")
			}
		})
	}
	for _, bad := range []string{"", "zNotAKey", `{"kty":"RSA"}`, `{"kty":"EC","crv":"P-256","d":"%%%"}`} {
		if _, err := parseDPoPKey(bad); err == nil {
			t.Fatalf("parseDPoPKey(%q) succeeded", bad)
		}
	}
}
