package moderation_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/plyr-fm/plyrtasks/moderation"
	"github.com/plyr-fm/plyrtasks/moderation/moderationtest"
)

const (
	testKey  = "test-moderation-key-5f2c"
	audioURL = "https://audio.plyr.test/tracks/42.mp3?X-Amz-Signature=sekrit"
)

// newClient returns a client for srv that allows audio.plyr.test (resolved
// to a public documentation address, as DNS is not reachable here).
func newClient(t *testing.T, srv *moderationtest.Server, mutate ...func(*moderation.Options)) *moderation.Client {
	t.Helper()
	o := moderation.Options{
		URL:     srv.URL,
		Key:     testKey,
		Timeout: 5 * time.Second,
		AudioURLs: moderation.GuardOptions{
			AllowedHosts: []string{"audio.plyr.test"},
			LookupIP:     publicDNS,
		},
	}
	for _, m := range mutate {
		m(&o)
	}
	c, err := moderation.New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func int64p(v int64) *int64 { return &v }

func TestScanAnswers(t *testing.T) {
	tests := []struct {
		answer string
		want   moderation.ScanResult
		// rawStatus is raw_response.status, to prove the raw answer is kept.
		rawStatus string
	}{
		{
			answer:    "clean",
			want:      moderation.ScanResult{Matches: []moderation.Match{}},
			rawStatus: "success",
		},
		{
			answer: "below_threshold",
			want: moderation.ScanResult{
				Matches: []moderation.Match{{Artist: "Aphex Twin", Title: "Xtal", Album: "Selected Ambient Works 85-92",
					Score: 62, Timecode: "03:10", OffsetMS: int64p(190000)}},
				ServiceFlagged: true, DominantMatchPct: 12.5, DominantMatch: "Aphex Twin - Xtal",
				SustainedSongCount: 1, HighestScore: 62,
			},
			rawStatus: "success",
		},
		{
			answer: "dominant",
			want: moderation.ScanResult{
				ServiceFlagged: true, DominantMatchPct: 80, DominantMatch: "Daft Punk - One More Time",
				SustainedSongCount: 1,
			},
			rawStatus: "success",
		},
		{
			answer: "dj_mix",
			want: moderation.ScanResult{
				DominantMatchPct: 22, DominantMatch: "Stardust - Music Sounds Better With You", SustainedSongCount: 4,
			},
			rawStatus: "success",
		},
		{
			answer: "self_match",
			want: moderation.ScanResult{
				ServiceFlagged: true, DominantMatchPct: 100,
				DominantMatch: "Night Tempo - Plastic Love (Night Tempo Edit)", SustainedSongCount: 1,
			},
			rawStatus: "success",
		},
	}
	for _, tt := range tests {
		t.Run(tt.answer, func(t *testing.T) {
			srv := moderationtest.NewServer(t, testKey)
			srv.SetAnswer(audioURL, moderationtest.Answer(tt.answer))
			got, err := newClient(t, srv).Scan(context.Background(), audioURL)
			if err != nil {
				t.Fatalf("Scan: %v", err)
			}
			if got.ServiceFlagged != tt.want.ServiceFlagged || got.DominantMatchPct != tt.want.DominantMatchPct ||
				got.DominantMatch != tt.want.DominantMatch || got.SustainedSongCount != tt.want.SustainedSongCount ||
				got.HighestScore != tt.want.HighestScore {
				t.Errorf("Scan = flagged %v pct %v dominant %q sustained %d highest %v, want %+v",
					got.ServiceFlagged, got.DominantMatchPct, got.DominantMatch, got.SustainedSongCount, got.HighestScore, tt.want)
			}
			if tt.want.Matches != nil {
				gb, _ := json.Marshal(got.Matches)
				wb, _ := json.Marshal(tt.want.Matches)
				if string(gb) != string(wb) {
					t.Errorf("Matches = %s, want %s", gb, wb)
				}
			}
			var raw struct{ Status string }
			if err := json.Unmarshal(got.Raw, &raw); err != nil || raw.Status != tt.rawStatus {
				t.Errorf("Raw = %s (%v), want raw_response with status %q", got.Raw, err, tt.rawStatus)
			}
			if s := srv.Scanned(); len(s) != 1 || s[0] != audioURL {
				t.Errorf("server scanned %q, want [%q]", s, audioURL)
			}
		})
	}
}

func TestScanDominantMatches(t *testing.T) {
	srv := moderationtest.NewServer(t, testKey)
	srv.SetAnswer(audioURL, moderationtest.Answer("dominant"))
	got, err := newClient(t, srv).Scan(context.Background(), audioURL)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Matches) != 5 {
		t.Fatalf("%d matches, want 5", len(got.Matches))
	}
	m := got.Matches[1]
	want := moderation.Match{Artist: "Daft Punk", Title: "One More Time", Album: "Discovery", ISRC: "GBDUW0000053", Timecode: "00:12"}
	if m.Artist != want.Artist || m.Title != want.Title || m.Album != want.Album || m.ISRC != want.ISRC ||
		m.Timecode != want.Timecode || m.OffsetMS == nil || *m.OffsetMS != 12000 {
		t.Errorf("match[1] = %+v, want %+v with offset 12000", m, want)
	}
}

func TestScanFailures(t *testing.T) {
	tests := []struct {
		name       string
		answer     string // "" = no answer set
		script     []moderationtest.Reply
		key        string
		timeout    time.Duration
		retryable  bool
		retryAfter time.Duration
		contains   []string
		errType    any
	}{
		{name: "malformed JSON", answer: "malformed", contains: []string{"unreadable answer", "not a JSON scan result"}, errType: new(*moderation.ProtocolError)},
		{name: "missing fields", answer: "missing_fields", contains: []string{"missing dominant_match_pct, sustained_song_count"}, errType: new(*moderation.ProtocolError)},
		{name: "HTML 200", answer: "clean", script: []moderationtest.Reply{{Body: []byte("<html>maintenance</html>")}}, contains: []string{"unreadable answer"}, errType: new(*moderation.ProtocolError)},
		{name: "500", answer: "clean", script: []moderationtest.Reply{{Status: 500, Body: []byte(`{"error":"audd: upstream connect error"}`)}},
			retryable: true, contains: []string{"HTTP 500", `{"error":"audd: upstream connect error"}`}, errType: new(*moderation.StatusError)},
		{name: "502 empty body", answer: "clean", script: []moderationtest.Reply{{Status: 502}}, retryable: true, contains: []string{"HTTP 502 Bad Gateway"}},
		{name: "429 with Retry-After seconds", answer: "clean",
			script:    []moderationtest.Reply{{Status: 429, Header: http.Header{"Retry-After": {"7"}}, Body: []byte(`{"error":"rate limited"}`)}},
			retryable: true, retryAfter: 7 * time.Second, contains: []string{"HTTP 429"}},
		{name: "429 with absurd Retry-After is capped", answer: "clean",
			script:    []moderationtest.Reply{{Status: 429, Header: http.Header{"Retry-After": {"86400"}}}},
			retryable: true, retryAfter: time.Hour},
		{name: "408", answer: "clean", script: []moderationtest.Reply{{Status: 408}}, retryable: true},
		{name: "400", answer: "clean", script: []moderationtest.Reply{{Status: 400, Body: []byte(`{"error":"audio_url is not a URL"}`)}},
			contains: []string{"HTTP 400", "audio_url is not a URL"}},
		{name: "422 audio not fetchable", contains: []string{"HTTP 422", "audd could not fetch the audio"}},
		{name: "401 wrong key", answer: "clean", key: "wrong-key", contains: []string{"HTTP 401", "key rejected"}},
		{name: "redirect is not followed", answer: "clean",
			script:   []moderationtest.Reply{{Status: 307, Header: http.Header{"Location": {"http://127.0.0.1:1/elsewhere"}}}},
			contains: []string{"HTTP 307"}},
		{name: "timeout", answer: "clean", script: []moderationtest.Reply{{Delay: 30 * time.Second}}, timeout: 150 * time.Millisecond,
			retryable: true, contains: []string{"no answer within 150ms"}, errType: new(*moderation.TimeoutError)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := moderationtest.NewServer(t, testKey)
			if tt.answer != "" {
				srv.SetAnswer(audioURL, moderationtest.Answer(tt.answer))
			}
			srv.Script(moderationtest.Scan, tt.script...)
			c := newClient(t, srv, func(o *moderation.Options) {
				if tt.key != "" {
					o.Key = tt.key
				}
				if tt.timeout != 0 {
					o.Timeout = tt.timeout
				}
			})
			start := time.Now()
			res, err := c.Scan(context.Background(), audioURL)
			if err == nil {
				t.Fatalf("Scan = %+v, want an error", res)
			}
			if took := time.Since(start); took > 10*time.Second {
				t.Errorf("Scan took %s", took)
			}
			if got := moderation.Retryable(err); got != tt.retryable {
				t.Errorf("Retryable(%v) = %v, want %v", err, got, tt.retryable)
			}
			d, ok := moderation.RetryAfterHint(err)
			if d != tt.retryAfter || ok != (tt.retryAfter > 0) {
				t.Errorf("RetryAfterHint = %s, %v; want %s", d, ok, tt.retryAfter)
			}
			for _, s := range tt.contains {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
			for _, secret := range []string{testKey, "wrong-key", "sekrit"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q leaks %q", err, secret)
				}
			}
			if tt.errType != nil && !errors.As(err, tt.errType) {
				t.Errorf("error %T (%v) is not %T", err, err, tt.errType)
			}
		})
	}
}

func TestScan500ThenSuccess(t *testing.T) {
	srv := moderationtest.NewServer(t, testKey)
	srv.SetAnswer(audioURL, moderationtest.Answer("dominant"))
	srv.Script(moderationtest.Scan, moderationtest.Reply{Status: 500, Body: []byte(`{"error":"boom"}`)})
	c := newClient(t, srv)
	if _, err := c.Scan(context.Background(), audioURL); !moderation.Retryable(err) {
		t.Fatalf("first Scan error = %v, want a retryable 500", err)
	}
	res, err := c.Scan(context.Background(), audioURL)
	if err != nil {
		t.Fatalf("second Scan: %v", err)
	}
	if res.DominantMatchPct != 80 {
		t.Errorf("DominantMatchPct = %v, want 80", res.DominantMatchPct)
	}
	if n := srv.Calls(moderationtest.Scan); n != 2 {
		t.Errorf("server saw %d scans, want 2", n)
	}
}

func TestScanNetworkErrorIsRetryable(t *testing.T) {
	srv := moderationtest.NewServer(t, testKey)
	c := newClient(t, srv)
	srv.Close() // nothing listens there any more
	_, err := c.Scan(context.Background(), audioURL)
	if err == nil || !moderation.Retryable(err) {
		t.Fatalf("Scan with the service down = %v, want a retryable error", err)
	}
	if !strings.Contains(err.Error(), "moderation scan") {
		t.Errorf("error %q does not name the call", err)
	}
}

func TestScanCallerCancel(t *testing.T) {
	srv := moderationtest.NewServer(t, testKey)
	srv.SetAnswer(audioURL, moderationtest.Answer("clean"))
	srv.Script(moderationtest.Scan, moderationtest.Reply{Delay: 30 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := newClient(t, srv).Scan(ctx, audioURL)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Scan = %v, want the caller's deadline", err)
	}
	var te *moderation.TimeoutError
	if errors.As(err, &te) {
		t.Errorf("caller's deadline reported as the client's own timeout: %v", err)
	}
}

func TestScanRefusesAudioURLBeforeCalling(t *testing.T) {
	srv := moderationtest.NewServer(t, testKey)
	_, err := newClient(t, srv).Scan(context.Background(), "file:///etc/passwd")
	var ae *moderation.AudioURLError
	if !errors.As(err, &ae) || moderation.Retryable(err) {
		t.Fatalf("Scan(file:) = %v, want a permanent AudioURLError", err)
	}
	if n := srv.Calls(moderationtest.Scan); n != 0 {
		t.Errorf("the service was called %d times for a refused URL", n)
	}
}

func TestErrorBodyIsBounded(t *testing.T) {
	srv := moderationtest.NewServer(t, testKey)
	srv.Script(moderationtest.Scan, moderationtest.Reply{Status: 500, Body: []byte(strings.Repeat("x", 10000))})
	_, err := newClient(t, srv).Scan(context.Background(), audioURL)
	if err == nil || len(err.Error()) > 700 {
		t.Fatalf("error of %d bytes, want the body cut to 512", len(err.Error()))
	}
}

func TestReportFlag(t *testing.T) {
	srv := moderationtest.NewServer(t, testKey)
	c := newClient(t, srv, func(o *moderation.Options) { o.Actor = "service:plyrtasks-test" })
	err := c.ReportFlag(context.Background(), moderation.FlagReport{
		SubjectURI: "at://did:plc:abc/fm.plyr.track/3k2", TrackID: 42, Reason: "copyright scan: 80%", Notes: "details",
	})
	if err != nil {
		t.Fatalf("ReportFlag: %v", err)
	}
	want := moderationtest.Event{SubjectURI: "at://did:plc:abc/fm.plyr.track/3k2", SubjectTrackID: 42,
		Action: "flagged_by_scan", Actor: "service:plyrtasks-test", Reason: "copyright scan: 80%", Notes: "details"}
	if ev := srv.Events(); len(ev) != 1 || ev[0] != want {
		t.Errorf("events = %+v, want [%+v]", ev, want)
	}
}

func TestLabelerFailures(t *testing.T) {
	tests := []struct {
		name      string
		reply     *moderationtest.Reply
		labelKey  string
		retryable bool
	}{
		{name: "503", reply: &moderationtest.Reply{Status: 503, Body: []byte(`{"error":"labeler db unavailable"}`)}, retryable: true},
		{name: "400", reply: &moderationtest.Reply{Status: 400, Body: []byte(`{"error":"bad event"}`)}},
		{name: "wrong labeler key", labelKey: "other"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := moderationtest.NewServer(t, testKey)
			if tt.reply != nil {
				srv.Script(moderationtest.Events, *tt.reply)
				srv.Script(moderationtest.Negated, *tt.reply)
			}
			c := newClient(t, srv, func(o *moderation.Options) { o.LabelerKey = tt.labelKey })
			err := c.ReportFlag(context.Background(), moderation.FlagReport{SubjectURI: "at://did:plc:abc/fm.plyr.track/1", TrackID: 1})
			if err == nil || moderation.Retryable(err) != tt.retryable {
				t.Errorf("ReportFlag = %v, want an error with Retryable=%v", err, tt.retryable)
			}
			got, err := c.NegatedURIs(context.Background(), []string{"at://did:plc:abc/fm.plyr.track/1"})
			if err == nil || got != nil || moderation.Retryable(err) != tt.retryable {
				t.Errorf("NegatedURIs = %v, %v; want nil and an error with Retryable=%v", got, err, tt.retryable)
			}
			if len(srv.Events()) != 0 {
				t.Errorf("events recorded despite the failure: %+v", srv.Events())
			}
		})
	}
}

func TestNegatedURIs(t *testing.T) {
	uris := make([]string, 250)
	for i := range uris {
		uris[i] = fmt.Sprintf("at://did:plc:abc/fm.plyr.track/k%d", i)
	}
	srv := moderationtest.NewServer(t, testKey)
	srv.Negate(uris[3], uris[150], uris[249], "at://did:plc:abc/fm.plyr.track/not-asked")
	got, err := newClient(t, srv).NegatedURIs(context.Background(), uris)
	if err != nil {
		t.Fatalf("NegatedURIs: %v", err)
	}
	want := map[string]bool{uris[3]: true, uris[150]: true, uris[249]: true}
	if len(got) != len(want) {
		t.Errorf("NegatedURIs = %v, want %v", got, want)
	}
	for u := range want {
		if !got[u] {
			t.Errorf("%s missing from %v", u, got)
		}
	}
	var sizes []int
	for _, b := range srv.Batches() {
		sizes = append(sizes, len(b))
	}
	if len(sizes) != 3 || sizes[0] != 100 || sizes[1] != 100 || sizes[2] != 50 {
		t.Errorf("batch sizes = %v, want [100 100 50]", sizes)
	}
}

func TestNegatedURIsAnswers(t *testing.T) {
	asked := []string{"at://did:plc:abc/fm.plyr.track/1", "at://did:plc:abc/fm.plyr.track/2"}
	tests := []struct {
		name    string
		body    string
		want    []string
		wantErr string
	}{
		{name: "only asked URIs count", body: `{"negated_uris":["at://did:plc:abc/fm.plyr.track/2","at://did:plc:zzz/fm.plyr.track/9"]}`,
			want: []string{"at://did:plc:abc/fm.plyr.track/2"}},
		{name: "empty list", body: `{"negated_uris":[]}`, want: []string{}},
		{name: "missing list is not 'nothing negated'", body: `{"active_uris":[]}`, wantErr: "missing negated_uris"},
		{name: "null list", body: `{"negated_uris":null}`, wantErr: "missing negated_uris"},
		{name: "not JSON", body: `<html>`, wantErr: "unreadable answer"},
		{name: "wrong type", body: `{"negated_uris":"all"}`, wantErr: "unreadable answer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := moderationtest.NewServer(t, testKey)
			srv.Script(moderationtest.Negated, moderationtest.Reply{Body: []byte(tt.body)})
			got, err := newClient(t, srv).NegatedURIs(context.Background(), asked)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || moderation.Retryable(err) {
					t.Fatalf("NegatedURIs = %v, %v; want a permanent error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("NegatedURIs = %v, want %v", got, tt.want)
			}
			for _, u := range tt.want {
				if !got[u] {
					t.Errorf("%s missing from %v", u, got)
				}
			}
		})
	}
}

func TestNegatedURIsPartialFailureReturnsNothing(t *testing.T) {
	uris := make([]string, 150)
	for i := range uris {
		uris[i] = fmt.Sprintf("at://did:plc:abc/fm.plyr.track/t%d", i)
	}
	srv := moderationtest.NewServer(t, testKey)
	srv.Negate(uris[0], uris[120])
	// The first batch answers, the second fails.
	srv.Script(moderationtest.Negated, moderationtest.Reply{}, moderationtest.Reply{Status: 502})
	got, err := newClient(t, srv).NegatedURIs(context.Background(), uris)
	if err == nil || got != nil {
		t.Fatalf("NegatedURIs = %v, %v; want nil and an error", got, err)
	}
}

func TestNewRefusesBadOptions(t *testing.T) {
	tests := []struct {
		name string
		o    moderation.Options
		want string
	}{
		{"no key", moderation.Options{URL: "https://mod.test"}, "MODERATION_KEY"},
		{"no URL", moderation.Options{Key: "k"}, "MODERATION_URL"},
		{"not http", moderation.Options{URL: "ftp://mod.test", Key: "k"}, "MODERATION_URL"},
		{"credentials in URL", moderation.Options{URL: "https://u:p@mod.test", Key: "k"}, "credentials"},
		{"bad labeler URL", moderation.Options{URL: "https://mod.test", LabelerURL: "mod.test", Key: "k"}, "LABELER_URL"},
		{"host with port", moderation.Options{URL: "https://mod.test", Key: "k",
			AudioURLs: moderation.GuardOptions{AllowedHosts: []string{"cdn.test:443"}}}, `"cdn.test:443" must be a bare host name`},
		{"host as URL", moderation.Options{URL: "https://mod.test", Key: "k",
			AudioURLs: moderation.GuardOptions{AllowedHosts: []string{"https://cdn.test"}}}, "must be a bare host name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := moderation.New(tt.o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New = %v, %v; want an error containing %q", c, err, tt.want)
			}
		})
	}
}
