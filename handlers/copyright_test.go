package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plyr-fm/plyrtasks/config"
	"github.com/plyr-fm/plyrtasks/job"
	"github.com/plyr-fm/plyrtasks/moderation"
	"github.com/plyr-fm/plyrtasks/moderation/moderationtest"
	"github.com/plyr-fm/plyrtasks/store"
	"github.com/plyr-fm/plyrtasks/store/storetest"
	"github.com/plyr-fm/plyrtasks/tasks"
)

const (
	copyrightKey = "copyright-test-key-91ab"
	// The audio host is a development host on loopback: the moderation
	// service fetches audio itself, so nothing needs to serve it here.
	copyrightAudio = "http://127.0.0.1:9/audio/track.mp3"
)

// copyrightEnv is a real SQLite store, the local moderation service and
// labeler, and a registry with the two copyright handlers.
type copyrightEnv struct {
	t     *testing.T
	st    store.Store
	srv   *moderationtest.Server
	mod   *moderation.Client
	reg   *job.Registry
	sync  *CopyrightSyncResolutions
	track store.Track
}

type envOpt func(*moderation.Options)

func newCopyrightEnv(t *testing.T, opts ...envOpt) *copyrightEnv {
	t.Helper()
	e := &copyrightEnv{t: t, st: storetest.SQLite(t), srv: moderationtest.NewServer(t, copyrightKey)}
	o := moderation.Options{
		URL:            e.srv.URL,
		Key:            copyrightKey,
		Timeout:        5 * time.Second,
		LabelerTimeout: 5 * time.Second,
		AudioURLs:      moderation.GuardOptions{AllowedHosts: []string{"audio.plyr.test"}, DevHTTPHosts: []string{"127.0.0.1"}},
	}
	for _, f := range opts {
		f(&o)
	}
	mod, err := moderation.New(o)
	if err != nil {
		t.Fatal(err)
	}
	e.mod = mod
	e.wire(Deps{Store: e.st, Moderation: mod})
	e.track = e.newTrack("at://did:plc:uploader/fm.plyr.track/3kaaa")
	return e
}

// wire (re)builds the registry over d.
func (e *copyrightEnv) wire(d Deps) {
	e.reg = job.NewRegistry(tasks.All())
	job.Register(e.reg, NewCopyrightScan(d).Work)
	e.sync = NewCopyrightSyncResolutions(d)
	job.Register(e.reg, e.sync.Work)
}

// newTrack creates a track of the uploader "someone.bsky.social".
func (e *copyrightEnv) newTrack(recordURI string) store.Track {
	e.t.Helper()
	ctx := context.Background()
	if err := e.st.UpsertArtist(ctx, store.Artist{DID: "did:plc:uploader", Handle: "someone.bsky.social", DisplayName: "Someone"}); err != nil {
		e.t.Fatal(err)
	}
	tr, err := e.st.CreateTrack(ctx, store.Track{ArtistDID: "did:plc:uploader", Title: "Untitled", FileKey: "k", FileType: "mp3", RecordURI: recordURI})
	if err != nil {
		e.t.Fatal(err)
	}
	return tr
}

// result keeps a task's last SetResult.
type result struct {
	mu   sync.Mutex
	last []byte
}

func (r *result) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.last = append([]byte(nil), p...)
	return len(p), nil
}

func (r *result) decode(t *testing.T, v any) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := json.Unmarshal(r.last, v); err != nil {
		t.Fatalf("result %q: %v", r.last, err)
	}
}

// run runs one attempt of a task through the registry's full pipeline.
func (e *copyrightEnv) run(kind string, payload any, id string, attempt, maxRetry int) (*result, error) {
	e.t.Helper()
	b, err := json.Marshal(payload)
	if err != nil {
		e.t.Fatal(err)
	}
	res := &result{}
	err = e.reg.Handler()(context.Background(), &job.Task{
		Kind: kind, Payload: b, ID: id, Queue: "default", Attempt: attempt, MaxRetry: maxRetry, Result: res,
	})
	return res, err
}

func (e *copyrightEnv) scan(trackID int64, audioURL, id string, attempt int) (*result, error) {
	return e.run("copyright:scan", tasks.CopyrightScanArgs{TrackID: trackID, AudioURL: audioURL}, id, attempt, 8)
}

func (e *copyrightEnv) syncResolutions() (*result, error) {
	return e.run("copyright:sync-resolutions", struct{}{}, "sync", 0, 0)
}

func (e *copyrightEnv) getScan(trackID int64) store.CopyrightScan {
	e.t.Helper()
	sc, err := e.st.GetScan(context.Background(), trackID)
	if err != nil {
		e.t.Fatalf("GetScan(%d): %v", trackID, err)
	}
	return sc
}

func (e *copyrightEnv) noScan(trackID int64) {
	e.t.Helper()
	if sc, err := e.st.GetScan(context.Background(), trackID); !errors.Is(err, store.ErrNotFound) {
		e.t.Fatalf("GetScan(%d) = %+v, %v; want no scan stored", trackID, sc, err)
	}
}

// rawOf returns the raw_response of a recorded answer, compacted.
func rawOf(t *testing.T, answer string) string {
	var a struct {
		Raw json.RawMessage `json:"raw_response"`
	}
	if err := json.Unmarshal(moderationtest.Answer(answer), &a); err != nil {
		t.Fatal(err)
	}
	return compact(t, a.Raw)
}

func compact(t *testing.T, b []byte) string {
	t.Helper()
	if len(b) == 0 {
		return ""
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("not JSON: %q", b)
	}
	out, _ := json.Marshal(v)
	return string(out)
}

func TestCopyrightScanStoresEveryOutcome(t *testing.T) {
	tests := []struct {
		answer string
		want   store.CopyrightScan // TrackID, ScannedAt, Matches and Raw checked separately
		// matches is how many matches are stored.
		matches   int
		selfMatch bool
		// reason is the labeler event's reason; "" = no event.
		reason string
	}{
		{answer: "clean", want: store.CopyrightScan{Status: store.ScanClean}},
		{answer: "below_threshold", matches: 1, want: store.CopyrightScan{Status: store.ScanClean,
			DominantMatchPct: 12.5, DominantMatch: "Aphex Twin - Xtal", SustainedSongCount: 1, HighestScore: 62}},
		{answer: "dominant", matches: 5, want: store.CopyrightScan{Status: store.ScanFlagged, Flagged: true,
			DominantMatchPct: 80, DominantMatch: "Daft Punk - One More Time", SustainedSongCount: 1},
			reason: "copyright scan: dominant match Daft Punk - One More Time covers 80%; 1 sustained songs matched"},
		{answer: "dj_mix", matches: 9, want: store.CopyrightScan{Status: store.ScanFlagged, Flagged: true,
			DominantMatchPct: 22, DominantMatch: "Stardust - Music Sounds Better With You", SustainedSongCount: 4},
			reason: "copyright scan: dominant match Stardust - Music Sounds Better With You covers 22%; 4 sustained songs matched"},
		{answer: "self_match", matches: 3, selfMatch: true, want: store.CopyrightScan{Status: store.ScanClean,
			DominantMatchPct: 100, DominantMatch: "Night Tempo - Plastic Love (Night Tempo Edit)", SustainedSongCount: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.answer, func(t *testing.T) {
			e := newCopyrightEnv(t)
			if tt.selfMatch {
				if err := e.st.UpsertArtist(context.Background(), store.Artist{DID: "did:plc:uploader",
					Handle: "nighttempo.bsky.social", DisplayName: "Night Tempo"}); err != nil {
					t.Fatal(err)
				}
			}
			e.srv.SetAnswer(copyrightAudio, moderationtest.Answer(tt.answer))
			before := time.Now().Add(-time.Millisecond)
			res, err := e.scan(e.track.ID, copyrightAudio, "task-1", 0)
			if err != nil {
				t.Fatalf("scan: %v", err)
			}
			got := e.getScan(e.track.ID)
			want := tt.want
			want.TrackID = e.track.ID
			if got.TrackID != want.TrackID || got.Status != want.Status || got.Flagged != want.Flagged ||
				got.DominantMatchPct != want.DominantMatchPct || got.DominantMatch != want.DominantMatch ||
				got.SustainedSongCount != want.SustainedSongCount || got.HighestScore != want.HighestScore ||
				got.Error != "" || !got.ResolvedAt.IsZero() {
				t.Errorf("stored scan = %+v\nwant %+v", got, want)
			}
			if got.ScannedAt.Before(before) || got.ScannedAt.After(time.Now()) {
				t.Errorf("ScannedAt = %s, want now", got.ScannedAt)
			}
			var matches []moderation.Match
			if err := json.Unmarshal(got.Matches, &matches); err != nil || len(matches) != tt.matches {
				t.Errorf("stored matches %s (%v), want %d", got.Matches, err, tt.matches)
			}
			if raw := compact(t, got.Raw); raw != rawOf(t, tt.answer) {
				t.Errorf("stored raw = %s\nwant %s", raw, rawOf(t, tt.answer))
			}

			var out ScanOutcome
			res.decode(t, &out)
			if out.Status != string(want.Status) || out.Flagged != want.Flagged || out.SelfMatch != tt.selfMatch ||
				out.Reported != (tt.reason != "") {
				t.Errorf("result = %+v", out)
			}
			events := e.srv.Events()
			if tt.reason == "" {
				if len(events) != 0 {
					t.Errorf("labeler events %+v for a clean scan", events)
				}
				return
			}
			if len(events) != 1 {
				t.Fatalf("labeler events = %+v, want one", events)
			}
			ev := events[0]
			if ev.SubjectURI != e.track.RecordURI || ev.SubjectTrackID != e.track.ID || ev.Action != "flagged_by_scan" ||
				ev.Actor != "service:plyrtasks" || ev.Reason != tt.reason {
				t.Errorf("event = %+v, want subject %s track %d reason %q", ev, e.track.RecordURI, e.track.ID, tt.reason)
			}
			if !strings.HasPrefix(ev.Notes, fmt.Sprintf("track %d \"Untitled\" by did:plc:uploader", e.track.ID)) {
				t.Errorf("notes = %q", ev.Notes)
			}
			rep, err := e.st.GetScanReport(context.Background(), e.track.ID)
			if err != nil || rep.ReportedAt.IsZero() || rep.TaskID != "task-1" || !rep.ScannedAt.Equal(got.ScannedAt) {
				t.Errorf("report state = %+v, %v; want reported by task-1 for the stored scan", rep, err)
			}
		})
	}
}

func TestCopyrightScanFailures(t *testing.T) {
	tests := []struct {
		name     string
		answer   string // "" = the service has no answer for the URL (422)
		script   []moderationtest.Reply
		key      string
		attempt  int // of 8 retries
		audioURL string
		// permanent: archived now; otherwise retried.
		permanent bool
		// stored: the failed scan's error contains this; "" = nothing stored.
		stored     string
		retryAfter time.Duration
		scanCalls  int
	}{
		{name: "malformed JSON", answer: "malformed", permanent: true, stored: "unreadable answer: not a JSON scan result", scanCalls: 1},
		{name: "missing fields", answer: "missing_fields", permanent: true, stored: "missing dominant_match_pct, sustained_song_count", scanCalls: 1},
		{name: "500 is retried, nothing stored", answer: "clean", script: []moderationtest.Reply{{Status: 500}}, scanCalls: 1},
		{name: "500 on the last attempt is recorded as failed", answer: "clean", script: []moderationtest.Reply{{Status: 500, Body: []byte(`{"error":"audd down"}`)}},
			attempt: 8, stored: `HTTP 500 Internal Server Error: {"error":"audd down"}`, scanCalls: 1},
		{name: "429 waits for Retry-After", answer: "clean",
			script: []moderationtest.Reply{{Status: 429, Header: http.Header{"Retry-After": {"42"}}}}, retryAfter: 42 * time.Second, scanCalls: 1},
		{name: "timeout is retried", answer: "clean", script: []moderationtest.Reply{{Delay: time.Minute}}, scanCalls: 1},
		{name: "timeout on the last attempt is recorded as failed", answer: "clean", script: []moderationtest.Reply{{Delay: time.Minute}},
			attempt: 8, stored: "moderation scan: no answer within 200ms", scanCalls: 1},
		{name: "wrong key", answer: "clean", key: "not-the-key", permanent: true, stored: "HTTP 401 Unauthorized (key rejected", scanCalls: 1},
		{name: "audio the service cannot fetch", permanent: true, stored: "HTTP 422", scanCalls: 1},
		{name: "http off the dev hosts", audioURL: "http://audio.plyr.test/a.mp3", permanent: true,
			stored: "audio_url: must use https"},
		{name: "host off the list", audioURL: "https://evil.example/a.mp3", permanent: true,
			stored: `audio_url: host "evil.example" is not in AUDIO_URL_ALLOWED_HOSTS`},
		{name: "private address", audioURL: "https://10.0.0.7/a.mp3", permanent: true,
			stored: "is not in AUDIO_URL_ALLOWED_HOSTS"},
		{name: "credentials", audioURL: "https://u:p@audio.plyr.test/a.mp3", permanent: true,
			stored: "audio_url: must not carry credentials"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newCopyrightEnv(t, func(o *moderation.Options) {
				o.Timeout = 200 * time.Millisecond
				if tt.key != "" {
					o.Key = tt.key
				}
			})
			audio := copyrightAudio
			if tt.audioURL != "" {
				audio = tt.audioURL
			}
			if tt.answer != "" {
				e.srv.SetAnswer(audio, moderationtest.Answer(tt.answer))
			}
			e.srv.Script(moderationtest.Scan, tt.script...)
			_, err := e.scan(e.track.ID, audio, "task-1", tt.attempt)
			if err == nil {
				t.Fatal("scan succeeded, want an error")
			}
			if job.IsPermanent(err) != tt.permanent {
				t.Errorf("IsPermanent(%v) = %v, want %v", err, job.IsPermanent(err), tt.permanent)
			}
			var ra *job.RetryAfterError
			if tt.retryAfter > 0 && (!errors.As(err, &ra) || ra.After != tt.retryAfter) {
				t.Errorf("error %v, want RetryAfter %s", err, tt.retryAfter)
			}
			if strings.Contains(err.Error(), copyrightKey) || strings.Contains(err.Error(), "not-the-key") {
				t.Errorf("error %q shows a key", err)
			}
			if n := e.srv.Calls(moderationtest.Scan); n != tt.scanCalls {
				t.Errorf("service saw %d scans, want %d", n, tt.scanCalls)
			}
			if len(e.srv.Events()) != 0 {
				t.Errorf("events %+v after a failed scan", e.srv.Events())
			}
			if tt.stored == "" {
				e.noScan(e.track.ID)
				return
			}
			got := e.getScan(e.track.ID)
			if got.Status != store.ScanFailed || got.Flagged || !strings.Contains(got.Error, tt.stored) {
				t.Errorf("stored scan = status %s flagged %v error %q; want failed with %q", got.Status, got.Flagged, got.Error, tt.stored)
			}
			if got.Matches != nil || got.Raw != nil || got.DominantMatchPct != 0 {
				t.Errorf("failed scan carries results: %+v", got)
			}
		})
	}
}

// TestCopyrightScanInvalidPayload: a URL that is not http(s) never reaches
// the handler: the registry archives it naming audio_url.
func TestCopyrightScanInvalidPayload(t *testing.T) {
	e := newCopyrightEnv(t)
	for _, audio := range []string{"file:///etc/passwd", "", "gopher://x/"} {
		_, err := e.scan(e.track.ID, audio, "task-1", 0)
		if !job.IsPermanent(err) || !strings.Contains(err.Error(), "audio_url") {
			t.Errorf("scan(%q) = %v, want permanent naming audio_url", audio, err)
		}
	}
	e.noScan(e.track.ID)
	if n := e.srv.Calls(moderationtest.Scan); n != 0 {
		t.Errorf("service saw %d scans", n)
	}
}

func TestCopyrightScan500ThenSuccess(t *testing.T) {
	e := newCopyrightEnv(t)
	e.srv.SetAnswer(copyrightAudio, moderationtest.Answer("dominant"))
	e.srv.Script(moderationtest.Scan, moderationtest.Reply{Status: 503})
	if _, err := e.scan(e.track.ID, copyrightAudio, "task-1", 0); err == nil || job.IsPermanent(err) {
		t.Fatalf("attempt 0 = %v, want a retryable error", err)
	}
	e.noScan(e.track.ID)
	if _, err := e.scan(e.track.ID, copyrightAudio, "task-1", 1); err != nil {
		t.Fatalf("attempt 1: %v", err)
	}
	if got := e.getScan(e.track.ID); got.Status != store.ScanFlagged || got.DominantMatchPct != 80 {
		t.Errorf("stored %+v, want the flagged scan", got)
	}
	if n := len(e.srv.Events()); n != 1 {
		t.Errorf("%d events, want 1", n)
	}
}

func TestCopyrightScanModerationDisabled(t *testing.T) {
	e := newCopyrightEnv(t)
	e.wire(Deps{Store: e.st}) // no client, no config: disabled
	res, err := e.scan(e.track.ID, copyrightAudio, "task-1", 0)
	if err != nil {
		t.Fatal(err)
	}
	got := e.getScan(e.track.ID)
	if got.Status != store.ScanSkipped || got.Flagged || got.Error != "skipped: moderation disabled" || got.ScannedAt.IsZero() {
		t.Errorf("stored %+v, want skipped: moderation disabled", got)
	}
	var out ScanOutcome
	res.decode(t, &out)
	if out.Status != "skipped" || out.Reason != "skipped: moderation disabled" {
		t.Errorf("result %+v", out)
	}
	if n := e.srv.Calls(moderationtest.Scan); n != 0 {
		t.Errorf("service saw %d scans while disabled", n)
	}
	sres, err := e.syncResolutions()
	var sout SyncOutcome
	sres.decode(t, &sout)
	if err != nil || sout.Skipped != "moderation disabled" {
		t.Errorf("sync while disabled = %+v, %v", sout, err)
	}
}

func TestCopyrightScanDeletedTrack(t *testing.T) {
	e := newCopyrightEnv(t)
	e.srv.SetAnswer(copyrightAudio, moderationtest.Answer("dominant"))
	if _, err := e.scan(99999, copyrightAudio, "task-1", 0); err != nil {
		t.Fatalf("scan of a deleted track = %v, want done", err)
	}
	if n := e.srv.Calls(moderationtest.Scan); n != 0 {
		t.Errorf("service saw %d scans for a deleted track", n)
	}
}

// TestCopyrightScanLabelerOutageRetriesOnlyTheReport: the scan is paid for
// once; retries of the task only report.
func TestCopyrightScanLabelerOutageRetriesOnlyTheReport(t *testing.T) {
	e := newCopyrightEnv(t)
	e.srv.SetAnswer(copyrightAudio, moderationtest.Answer("dominant"))
	e.srv.Script(moderationtest.Events,
		moderationtest.Reply{Status: 503, Header: http.Header{"Retry-After": {"30"}}},
		moderationtest.Reply{Status: 502})

	_, err := e.scan(e.track.ID, copyrightAudio, "task-1", 0)
	var ra *job.RetryAfterError
	if !errors.As(err, &ra) || ra.After != 30*time.Second || job.IsPermanent(err) {
		t.Fatalf("attempt 0 = %v, want retry after 30s", err)
	}
	saved := e.getScan(e.track.ID)
	if saved.Status != store.ScanFlagged || !saved.Flagged {
		t.Fatalf("after attempt 0 the scan is %+v, want saved flagged", saved)
	}
	if rep, err := e.st.GetScanReport(context.Background(), e.track.ID); err != nil || !rep.ReportedAt.IsZero() {
		t.Fatalf("report state %+v, %v; want pending", rep, err)
	}

	if _, err := e.scan(e.track.ID, copyrightAudio, "task-1", 1); err == nil || job.IsPermanent(err) {
		t.Fatalf("attempt 1 = %v, want a retryable error", err)
	}
	res, err := e.scan(e.track.ID, copyrightAudio, "task-1", 2)
	if err != nil {
		t.Fatalf("attempt 2: %v", err)
	}
	if n := e.srv.Calls(moderationtest.Scan); n != 1 {
		t.Errorf("the service scanned %d times, want once", n)
	}
	if n := e.srv.Calls(moderationtest.Events); n != 3 {
		t.Errorf("the labeler was called %d times, want 3", n)
	}
	if ev := e.srv.Events(); len(ev) != 1 || ev[0].SubjectTrackID != e.track.ID {
		t.Errorf("events = %+v, want one report", ev)
	}
	if got := e.getScan(e.track.ID); !got.ScannedAt.Equal(saved.ScannedAt) {
		t.Errorf("the scan was replaced: %s, want %s", got.ScannedAt, saved.ScannedAt)
	}
	var out ScanOutcome
	res.decode(t, &out)
	if !out.Resumed || !out.Reported || !out.Flagged {
		t.Errorf("result %+v, want resumed and reported", out)
	}

	// The task runs again (a crash after the report, before the ack): done.
	if _, err := e.scan(e.track.ID, copyrightAudio, "task-1", 3); err != nil {
		t.Fatal(err)
	}
	if n := len(e.srv.Events()); n != 1 {
		t.Errorf("%d events after a repeated run, want still 1", n)
	}

	// A new task (the audio was replaced) scans again.
	e.srv.SetAnswer(copyrightAudio+"?v=2", moderationtest.Answer("clean"))
	if _, err := e.scan(e.track.ID, copyrightAudio+"?v=2", "task-2", 0); err != nil {
		t.Fatal(err)
	}
	if n := e.srv.Calls(moderationtest.Scan); n != 2 {
		t.Errorf("service scanned %d times, want 2 after a rescan", n)
	}
	if got := e.getScan(e.track.ID); got.Status != store.ScanClean || got.Flagged {
		t.Errorf("after the rescan the scan is %+v, want clean", got)
	}
}

// TestCopyrightUnreportedFlagsAreResent: a flag whose report never got
// through (labeler down for every attempt, or no record URI yet) is sent by
// the resolution sync, once.
func TestCopyrightUnreportedFlagsAreResent(t *testing.T) {
	e := newCopyrightEnv(t)
	e.sync.resendAfter = 0
	e.srv.SetAnswer(copyrightAudio, moderationtest.Answer("dj_mix"))

	// Track 1: the labeler is down on the last attempt.
	e.srv.Script(moderationtest.Events, moderationtest.Reply{Status: 503})
	if _, err := e.scan(e.track.ID, copyrightAudio, "task-1", 8); err == nil {
		t.Fatal("last attempt with the labeler down succeeded")
	}
	if got := e.getScan(e.track.ID); got.Status != store.ScanFlagged || !got.Flagged {
		t.Fatalf("scan %+v: a failed report must not turn the flag into a failure", got)
	}

	// Track 2: no record URI yet.
	bare := e.newTrack("")
	res, err := e.scan(bare.ID, copyrightAudio, "task-2", 0)
	if err != nil {
		t.Fatal(err)
	}
	var out ScanOutcome
	res.decode(t, &out)
	if out.Reported || !strings.Contains(out.ReportPending, "no ATProto record") {
		t.Errorf("result %+v, want the report pending", out)
	}
	if n := len(e.srv.Events()); n != 0 {
		t.Fatalf("%d events, want none yet", n)
	}

	if _, err := e.syncResolutions(); err != nil {
		t.Fatal(err)
	}
	if ev := e.srv.Events(); len(ev) != 1 || ev[0].SubjectTrackID != e.track.ID {
		t.Fatalf("events after the first sync = %+v, want track %d's report", ev, e.track.ID)
	}
	if err := e.st.SetTrackRecord(context.Background(), bare.ID, "at://did:plc:uploader/fm.plyr.track/3kbbb", "bafyreib"); err != nil {
		t.Fatal(err)
	}
	sres, err := e.syncResolutions()
	if err != nil {
		t.Fatal(err)
	}
	var sout SyncOutcome
	sres.decode(t, &sout)
	ev := e.srv.Events()
	if len(ev) != 2 || ev[1].SubjectURI != "at://did:plc:uploader/fm.plyr.track/3kbbb" || sout.ReportsSent != 1 {
		t.Fatalf("events after the second sync = %+v (result %+v), want track %d's report", ev, sout, bare.ID)
	}
	if _, err := e.syncResolutions(); err != nil {
		t.Fatal(err)
	}
	if n := len(e.srv.Events()); n != 2 {
		t.Errorf("%d events after a third sync, want still 2", n)
	}
}

func TestCopyrightResendWaitsForTheScanAttempt(t *testing.T) {
	e := newCopyrightEnv(t) // resendAfter: the scan task's timeout
	e.srv.SetAnswer(copyrightAudio, moderationtest.Answer("dominant"))
	e.srv.Script(moderationtest.Events, moderationtest.Reply{Status: 503})
	if _, err := e.scan(e.track.ID, copyrightAudio, "task-1", 0); err == nil {
		t.Fatal("want the report to fail")
	}
	if _, err := e.syncResolutions(); err != nil {
		t.Fatal(err)
	}
	if n := len(e.srv.Events()); n != 0 {
		t.Errorf("the sync re-sent a report the scan task is still retrying (%d events)", n)
	}
}

// flagTracks stores a flagged scan for n new tracks with record URIs.
func (e *copyrightEnv) flagTracks(n int) []store.Track {
	e.t.Helper()
	var out []store.Track
	for i := 0; i < n; i++ {
		tr := e.newTrack(fmt.Sprintf("at://did:plc:uploader/fm.plyr.track/flag%d", i))
		err := e.st.SaveScan(context.Background(), store.CopyrightScan{TrackID: tr.ID, Status: store.ScanFlagged, Flagged: true,
			DominantMatchPct: 90, DominantMatch: "A - B", SustainedSongCount: 1})
		if err != nil {
			e.t.Fatal(err)
		}
		if _, err := e.st.MarkScanReported(context.Background(), tr.ID, e.getScan(tr.ID).ScannedAt, time.Now()); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, tr)
	}
	return out
}

func (e *copyrightEnv) flagged(tracks []store.Track) []bool {
	e.t.Helper()
	out := make([]bool, len(tracks))
	for i, tr := range tracks {
		sc := e.getScan(tr.ID)
		out[i] = sc.Flagged
		if sc.Flagged != sc.ResolvedAt.IsZero() {
			e.t.Errorf("track %d: flagged %v with resolved_at %s", tr.ID, sc.Flagged, sc.ResolvedAt)
		}
	}
	return out
}

func TestCopyrightSyncResolutionsClearsOnlyNegated(t *testing.T) {
	e := newCopyrightEnv(t, func(o *moderation.Options) { o.NegatedBatch = 2 })
	tracks := e.flagTracks(5)
	e.srv.Negate(tracks[1].RecordURI, tracks[4].RecordURI, "at://did:plc:other/fm.plyr.track/unrelated")
	res, err := e.syncResolutions()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(e.flagged(tracks)), "[true false true true false]"; got != want {
		t.Errorf("flagged = %s, want %s", got, want)
	}
	var out SyncOutcome
	res.decode(t, &out)
	if out != (SyncOutcome{Checked: 5, Negated: 2, FlagsCleared: 2}) {
		t.Errorf("result %+v", out)
	}
	if n := len(e.srv.Batches()); n != 3 {
		t.Errorf("%d negated-labels requests, want 3 batches of at most 2", n)
	}
}

// TestCopyrightSyncResolutionsFlagsSurviveLabelerOutage: whatever goes wrong at the
// labeler, no flag is cleared and the run fails visibly; once the labeler
// answers again, only explicitly negated flags are cleared.
func TestCopyrightSyncResolutionsFlagsSurviveLabelerOutage(t *testing.T) {
	outages := []struct {
		name   string
		script []moderationtest.Reply
		down   bool // the labeler is not listening at all
		key    string
		want   string
	}{
		{name: "503", script: []moderationtest.Reply{{Status: 503, Body: []byte(`{"error":"db down"}`)}}, want: "HTTP 503"},
		{name: "500 on the second batch", script: []moderationtest.Reply{{}, {Status: 500}}, want: "HTTP 500"},
		{name: "timeout", script: []moderationtest.Reply{{Delay: time.Minute}}, want: "no answer within"},
		{name: "wrong key", key: "stale-key", want: "HTTP 401"},
		{name: "no negated_uris in the answer", script: []moderationtest.Reply{{Body: []byte(`{"active_uris":[]}`)}}, want: "missing negated_uris"},
		{name: "HTML answer", script: []moderationtest.Reply{{Body: []byte(`<html>502</html>`)}}, want: "unreadable answer"},
		{name: "labeler down", down: true, want: "labeler negated-labels"},
	}
	for _, tt := range outages {
		t.Run(tt.name, func(t *testing.T) {
			e := newCopyrightEnv(t, func(o *moderation.Options) {
				o.NegatedBatch = 2
				o.LabelerTimeout = 200 * time.Millisecond
				if tt.key != "" {
					o.LabelerKey = tt.key
				}
			})
			tracks := e.flagTracks(3)
			e.srv.Negate(tracks[0].RecordURI, tracks[2].RecordURI)
			e.srv.Script(moderationtest.Negated, tt.script...)
			if tt.down {
				e.srv.Close()
			}
			_, err := e.syncResolutions()
			if err == nil || !strings.Contains(err.Error(), "no flag cleared") || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("sync = %v, want a failure saying no flag cleared and %q", err, tt.want)
			}
			if got := fmt.Sprint(e.flagged(tracks)); got != "[true true true]" {
				t.Fatalf("flags after the outage = %s, want all kept", got)
			}
			if tt.down {
				return
			}
			// The labeler recovers; the next tick clears what was negated.
			if tt.key != "" {
				mod, err := moderation.New(moderation.Options{URL: e.srv.URL, Key: copyrightKey})
				if err != nil {
					t.Fatal(err)
				}
				e.wire(Deps{Store: e.st, Moderation: mod})
			}
			if _, err := e.syncResolutions(); err != nil {
				t.Fatalf("sync after recovery: %v", err)
			}
			if got := fmt.Sprint(e.flagged(tracks)); got != "[false true false]" {
				t.Errorf("flags after recovery = %s, want only the negated ones cleared", got)
			}
		})
	}
}

// TestCopyrightSyncResolutionsNoLabelIsNotResolved is the regression test of
// plyr.fm's flag wipe: a flag emits no label, so "no label" (nothing
// negated) must clear nothing.
func TestCopyrightSyncResolutionsNoLabelIsNotResolved(t *testing.T) {
	e := newCopyrightEnv(t)
	tracks := e.flagTracks(3)
	for i := 0; i < 3; i++ {
		if _, err := e.syncResolutions(); err != nil {
			t.Fatal(err)
		}
	}
	if got := fmt.Sprint(e.flagged(tracks)); got != "[true true true]" {
		t.Errorf("flags = %s after syncs with nothing negated, want all kept", got)
	}
}

func TestCopyrightModerationFromConfig(t *testing.T) {
	disabled := config.Moderation{Timeout: time.Minute, ScoreThreshold: 30, MixSongThreshold: 3}
	if c, err := ModerationFromConfig(disabled); c != nil || err != nil {
		t.Errorf("disabled config = %v, %v; want nil, nil", c, err)
	}
	enabled := disabled
	enabled.URL, enabled.Key, enabled.AllowedHosts = "https://moderation.plyr.test", "k", []string{"audio.plyr.test"}
	enabled.ScoreThreshold, enabled.MixSongThreshold = 70, 5
	d, err := withModeration(Deps{Config: &config.Config{Moderation: enabled}})
	if err != nil || d.Moderation == nil {
		t.Fatalf("withModeration = %v, %v; want a client", d.Moderation, err)
	}
	if r := d.Moderation.Rule(); r.ScoreThreshold != 70 || r.MixSongThreshold != 5 {
		t.Errorf("rule = %+v, want the configured thresholds", r)
	}
	bad := enabled
	bad.AllowedHosts = []string{"https://audio.plyr.test"}
	if _, err := withModeration(Deps{Config: &config.Config{Moderation: bad}}); err == nil {
		t.Error("a bad host entry built a client")
	}
}

// TestCopyrightScanIsUniquePerTrack confirms the declaration the client
// helper relies on: one scan per track while queued or running.
func TestCopyrightScanIsUniquePerTrack(t *testing.T) {
	a := tasks.CopyrightScanArgs{TrackID: 42, AudioURL: "https://audio.plyr.test/a.mp3"}
	b := tasks.CopyrightScanArgs{TrackID: 42, AudioURL: "https://audio.plyr.test/b.mp3"}
	c := tasks.CopyrightScanArgs{TrackID: 43, AudioURL: "https://audio.plyr.test/a.mp3"}
	if tasks.UniqueKey(a) != tasks.UniqueKey(b) || tasks.UniqueKey(a) == tasks.UniqueKey(c) {
		t.Errorf("unique keys %q %q %q: want one per track", tasks.UniqueKey(a), tasks.UniqueKey(b), tasks.UniqueKey(c))
	}
	o := a.InsertOpts()
	if o.UniqueFor < o.Timeout {
		t.Errorf("UniqueFor %s is shorter than one attempt (%s)", o.UniqueFor, o.Timeout)
	}
}

// TestCopyrightScanCancelledIsNoVerdict: a last attempt cut short by the
// worker (shutdown, the task's timeout) records nothing: the task goes back
// to the queue, and "failed" would be a verdict on a scan that never ended.
func TestCopyrightScanCancelledIsNoVerdict(t *testing.T) {
	e := newCopyrightEnv(t)
	e.srv.SetAnswer(copyrightAudio, moderationtest.Answer("dominant"))
	e.srv.Script(moderationtest.Scan, moderationtest.Reply{Delay: time.Minute})
	payload, _ := json.Marshal(tasks.CopyrightScanArgs{TrackID: e.track.ID, AudioURL: copyrightAudio})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := e.reg.Handler()(ctx, &job.Task{Kind: "copyright:scan", Payload: payload, ID: "task-1", Attempt: 8, MaxRetry: 8})
	if !errors.Is(err, context.DeadlineExceeded) || job.IsPermanent(err) {
		t.Fatalf("scan = %v, want the context's error, retryable", err)
	}
	e.noScan(e.track.ID)
}
