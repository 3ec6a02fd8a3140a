package logs_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/plyr-fm/plyrtasks/e2e/e2etest"
	"github.com/plyr-fm/plyrtasks/internal/logcheck"
	"github.com/plyr-fm/plyrtasks/moderation/moderationtest"
	"github.com/plyr-fm/plyrtasks/pds/pdstest"
	"github.com/plyr-fm/plyrtasks/store"
)

// waitBound bounds each wait for a task to end (and the CLI's --wait).
const waitBound = 60 * time.Second

// Task IDs of the run (each run has its own embedded Redis).
const (
	flagID    = "e2e-scan-flag" // copyright:scan over HTTP: flagged and reported
	failID    = "e2e-scan-fail" // copyright:scan through the CLI: 503 twice, retried once, archived
	commentID = "e2e-comment"   // pds:comment-create through the CLI: refreshes the session
	critical  = "plyr:critical" // pds:comment-create's queue
	deflt     = "plyr:default"  // copyright:scan's queue
	adminUser = "e2e-admin"     // DASHBOARD_USER
	viewUser  = "e2e-viewer"    // DASHBOARD_VIEWER_USER
	trackCID  = "bafyreib2rxk3rh6kzwq3j3q2ndhxkbqvbdz7a6zxyrnkmznmxkszyxwrvu"
	commentNS = "fm.plyr.comment" // PLYR_COMMENT_COLLECTION's default
)

// TestNoSecretsInLogs runs `plyrtasks serve` on embedded defaults in each
// log format with every secret set to a fresh random value, drives a full
// run through the HTTP API, the CLI, the dashboard and /metrics, and then
// searches everything the process wrote, and everything the CLI and the
// API answered, for every secret (raw and encoded). It also checks the log
// formats themselves (plain text without colour codes when not a terminal;
// one JSON object per line) and that each task run gives exactly one
// outcome line, agreeing with the run counter in /metrics.
//
// The session part (a stored session's tokens, a token refresh, a comment)
// needs the test PDS; without it the rest runs and the test ends skipped,
// or fails with PLYRTASKS_REQUIRE_PDS=1.
func TestNoSecretsInLogs(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs it twice")
	}
	bin := e2etest.Build(t)
	pdsURL, noPDS, havePDS := findPDS(t)
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) { fullRun(t, bin, format, pdsURL) })
	}
	if !havePDS {
		t.Skip(noPDS)
	}
}

// secrets are the run's secret values, fresh for each run.
type secrets struct {
	apiToken, wrongToken               string
	adminPass, viewerPass, wrongPass   string
	sessionKey, sessionKeyHex          string
	moderationKey                      string
	commentMarker, commentText         string
	pdsPassword                        string
	loginTokens, refreshedTokens       []string
	adminBasic, viewerBasic, wrongPair string
}

func newSecrets(t *testing.T) *secrets {
	t.Helper()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	s := &secrets{
		apiToken:      "apitok-" + randHex(t, 16),
		wrongToken:    "wrongtok-" + randHex(t, 16),
		adminPass:     "adminpw-" + randHex(t, 12),
		viewerPass:    "viewerpw-" + randHex(t, 12),
		wrongPass:     "wrongpw-" + randHex(t, 12),
		sessionKey:    base64.StdEncoding.EncodeToString(key),
		sessionKeyHex: hex.EncodeToString(key),
		moderationKey: "modkey-" + randHex(t, 16),
		commentMarker: "cmt" + randHex(t, 10),
	}
	// Quotes, an ampersand and a non-ASCII letter, so JSON and URL escaping
	// change it.
	s.commentText = s.commentMarker + ` meet me at "the old mill" & bring the tape — ünder the bridge`
	// What a basic-auth header carries (base64 of user:password).
	s.adminBasic = adminUser + ":" + s.adminPass
	s.viewerBasic = viewUser + ":" + s.viewerPass
	s.wrongPair = adminUser + ":" + s.wrongPass
	return s
}

// list names every secret; session tokens are included once known.
func (s *secrets) list() []secret {
	out := []secret{
		{"API_TOKEN", s.apiToken},
		{"a wrong API token", s.wrongToken},
		{"DASHBOARD_PASSWORD", s.adminPass},
		{"DASHBOARD_VIEWER_PASSWORD", s.viewerPass},
		{"a wrong dashboard password", s.wrongPass},
		{"admin user:password", s.adminBasic},
		{"viewer user:password", s.viewerBasic},
		{"wrong user:password", s.wrongPair},
		{"SESSION_ENCRYPTION_KEY", s.sessionKey},
		{"SESSION_ENCRYPTION_KEY bytes (hex)", s.sessionKeyHex},
		{"MODERATION_KEY", s.moderationKey},
		{"comment text", s.commentText},
		{"comment text's first word", s.commentMarker},
	}
	if s.pdsPassword != "" {
		out = append(out, secret{"PDS account password", s.pdsPassword})
	}
	for i, tok := range s.loginTokens {
		out = append(out, jwtSecrets(fmt.Sprintf("login token #%d", i+1), tok)...)
	}
	for i, tok := range s.refreshedTokens {
		out = append(out, jwtSecrets(fmt.Sprintf("refreshed token #%d", i+1), tok)...)
	}
	return out
}

// jwtSecrets is a token and its signature alone (a log that cuts a token
// short, or prints its parts, still shows the signature).
func jwtSecrets(name, tok string) []secret {
	out := []secret{{name, tok}}
	if i := strings.LastIndexByte(tok, '.'); i >= 0 && len(tok)-i-1 >= logcheck.MinSecretLen {
		out = append(out, secret{name + " signature", tok[i+1:]})
	}
	return out
}

func randHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// seeded is what seedStore put in the store.
type seeded struct {
	flagTrack, failTrack store.Track
	comment              store.Comment
}

// seedStore creates, before the process starts, the artist, the two tracks
// the scans are about (the flagged one with a record, so its flag is
// reported) and, with a PDS account, the comment row the comment task
// writes.
func seedStore(t *testing.T, dataDir, key, userDID, text string) seeded {
	t.Helper()
	ctx := t.Context()
	st, err := store.Open(ctx, store.Options{DataDir: dataDir, EncryptionKey: key})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	const artist = "did:plc:e2elogsartist0000000000"
	if err := st.UpsertArtist(ctx, store.Artist{DID: artist, Handle: "e2e-logs.plyr.test", DisplayName: "E2E Logs"}); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	var s seeded
	s.flagTrack, err = st.CreateTrack(ctx, store.Track{ArtistDID: artist, Title: "Flagged", FileKey: "e2e/flag.mp3", FileType: "mp3",
		RecordURI: "at://" + artist + "/fm.plyr.track/3kflagged2e2e", RecordCID: trackCID, CreatedAt: now})
	if err != nil {
		t.Fatal(err)
	}
	s.failTrack, err = st.CreateTrack(ctx, store.Track{ArtistDID: artist, Title: "Unscannable", FileKey: "e2e/fail.mp3", FileType: "mp3", CreatedAt: now})
	if err != nil {
		t.Fatal(err)
	}
	if userDID != "" {
		s.comment, err = st.CreateComment(ctx, store.Comment{TrackID: s.flagTrack.ID, UserDID: userDID, Text: text, TimestampMS: 12000, CreatedAt: now})
		if err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// runner drives one process and keeps everything the CLI and the API
// answered.
type runner struct {
	t   *testing.T
	p   *e2etest.Proc
	bin string
	env []string
	s   *secrets

	cliOut bytes.Buffer // every CLI command's output, with the command line
	apiOut bytes.Buffer // every HTTP answer (API, dashboard, metrics)
}

// cli runs a command of the binary with the process's environment.
func (r *runner) cli(stdin string, args ...string) (string, int) {
	r.t.Helper()
	var in io.Reader // nil: no stdin
	if stdin != "" {
		in = strings.NewReader(stdin)
	}
	out, code := e2etest.RunCLI(r.t, r.bin, r.env, in, args...)
	// The command line is the test's own: a --token value in it is no leak.
	shown := append([]string(nil), args...)
	for i := range shown {
		if i > 0 && shown[i-1] == "--token" {
			shown[i] = "TOKEN"
		}
	}
	fmt.Fprintf(&r.cliOut, "$ plyrtasks %s (exit %d)\n%s\n", strings.Join(shown, " "), code, out)
	return out, code
}

// do sends one HTTP request to the process.
func (r *runner) do(req e2etest.Request) (int, string) {
	r.t.Helper()
	code, body := r.p.Do(r.t, req)
	fmt.Fprintf(&r.apiOut, "%s %s -> %d\n%s\n", req.Method, req.Path, code, body)
	return code, body
}

// task reads a task through the API.
func (r *runner) task(id string) map[string]any {
	r.t.Helper()
	code, body := r.do(e2etest.Request{Path: "/v1/tasks/" + id, Token: r.s.apiToken})
	if code != http.StatusOK {
		r.t.Fatalf("GET /v1/tasks/%s: %d %s", id, code, body)
	}
	var st map[string]any
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		r.t.Fatalf("GET /v1/tasks/%s: %v: %s", id, err, body)
	}
	return st
}

// waitState polls the task until it is in state want.
func (r *runner) waitState(id, want string) map[string]any {
	r.t.Helper()
	deadline := time.Now().Add(waitBound)
	var st map[string]any
	for time.Now().Before(deadline) {
		st = r.task(id)
		if st["state"] == want {
			return st
		}
		time.Sleep(100 * time.Millisecond)
	}
	r.t.Fatalf("task %s never %s within %s: %v", id, want, waitBound, st)
	return nil
}

func fullRun(t *testing.T, bin, format, pdsURL string) {
	s := newSecrets(t)
	dataDir := t.TempDir()

	mod := moderationtest.NewServer(t, s.moderationKey)
	audio := newAudioServer(t)
	flagURL, failURL := audio.URL+"/audio/flag.mp3", audio.URL+"/audio/fail.mp3"
	mod.SetAnswer(flagURL, moderationtest.Answer("dominant"))

	var acct pdstest.Account
	var proxy *pdsProxy
	if pdsURL != "" {
		acct = pdstest.NewAccount(t, pdsURL)
		s.pdsPassword = acct.Password
		proxy = newPDSProxy(t, pdsURL)
	}
	seed := seedStore(t, dataDir, s.sessionKey, acct.DID, s.commentText)

	env := e2etest.Env(dataDir, e2etest.FreeAddr(t),
		"LOG_FORMAT="+format,
		"LOG_LEVEL=debug", // the most a process ever logs
		"DELAYED_TASK_CHECK_INTERVAL=100ms",
		"API_TOKEN="+s.apiToken,
		"DASHBOARD_USER="+adminUser, "DASHBOARD_PASSWORD="+s.adminPass,
		"DASHBOARD_VIEWER_USER="+viewUser, "DASHBOARD_VIEWER_PASSWORD="+s.viewerPass,
		"SESSION_ENCRYPTION_KEY="+s.sessionKey,
		"MODERATION_URL="+mod.URL, "MODERATION_KEY="+s.moderationKey,
		"AUDIO_URL_DEV_HTTP_HOSTS=127.0.0.1",
	)
	p := e2etest.Start(t, bin, env, "serve")
	p.WaitReady(t)
	r := &runner{t: t, p: p, bin: bin, env: env, s: s}

	// The operator's view of the configuration: secrets as set/unset.
	if out, code := r.cli("", "config"); code != 0 || !strings.Contains(out, "API_TOKEN=set") || !strings.Contains(out, "MODERATION_KEY=set") {
		t.Errorf("plyrtasks config: exit %d, want API_TOKEN=set and MODERATION_KEY=set:\n%s", code, out)
	}

	// A scan over HTTP that flags the track and reports it to the labeler.
	if code, body := r.do(e2etest.Request{Method: "POST", Path: "/v1/tasks/copyright:scan?task_id=" + flagID, Token: s.apiToken,
		Body: fmt.Sprintf(`{"track_id":%d,"audio_url":%q}`, seed.flagTrack.ID, flagURL)}); code != http.StatusAccepted {
		t.Fatalf("POST copyright:scan: %d %s", code, body)
	}
	st := r.waitState(flagID, "completed")
	var res struct {
		Flagged  bool `json:"flagged"`
		Reported bool `json:"reported"`
	}
	if b, _ := json.Marshal(st["result"]); json.Unmarshal(b, &res) != nil || !res.Flagged || !res.Reported {
		t.Errorf("the flag scan's result = %v, want flagged and reported", st["result"])
	}
	if ev := mod.Events(); len(ev) != 1 || ev[0].SubjectURI != seed.flagTrack.RecordURI {
		t.Errorf("labeler events = %+v, want one for %s", ev, seed.flagTrack.RecordURI)
	}

	// A scan through the CLI that fails twice (503 with Retry-After: 1):
	// retried once (after the worker's backoff, 5-10s), then archived. The
	// session part runs meanwhile; `status --wait` follows it at the end.
	busy := moderationtest.Reply{Status: http.StatusServiceUnavailable, Header: http.Header{"Retry-After": {"1"}}, Body: []byte(`{"error":"audd is busy"}`)}
	mod.Script(moderationtest.Scan, busy, busy)
	if out, code := r.cli("", "enqueue", "copyright:scan", fmt.Sprintf(`{"track_id":%d,"audio_url":%q}`, seed.failTrack.ID, failURL),
		"--task-id", failID, "--max-retry", "1"); code != 0 {
		t.Fatalf("enqueue copyright:scan: exit %d:\n%s", code, out)
	}

	// A comment payload the API and the CLI refuse: the answers name the
	// field, never the text.
	badComment := fmt.Sprintf(`{"session_id":"no-such-session","comment_id":"seven","subject_uri":%q,"subject_cid":%q,"text":%q}`,
		seed.flagTrack.RecordURI, trackCID, s.commentText)
	if code, body := r.do(e2etest.Request{Method: "POST", Path: "/v1/tasks/pds:comment-create", Token: s.apiToken, Body: badComment}); code != http.StatusBadRequest || !strings.Contains(body, "comment_id") {
		t.Errorf("POST a comment with a bad comment_id: %d %s, want 400 naming comment_id", code, body)
	}
	if out, code := r.cli(badComment, "enqueue", "pds:comment-create", "-"); code == 0 || !strings.Contains(out, "comment_id") {
		t.Errorf("enqueue a comment with a bad comment_id: exit %d, want an error naming comment_id:\n%s", code, out)
	}

	// A stored session and a comment written through it: the proxy makes its
	// access token expire, so the task refreshes it first.
	if proxy != nil {
		out, code := r.cli(acct.Password+"\n", "session", "add", "--pds", proxy.URL, "--identifier", acct.Handle, "--password-stdin")
		lines := strings.Split(strings.TrimSpace(out), "\n")
		sessionID := lines[len(lines)-1]
		if code != 0 || sessionID == "" {
			t.Fatalf("session add: exit %d:\n%s", code, out)
		}
		r.cli("", "session", "list")
		payload, err := json.Marshal(map[string]any{
			"session_id": sessionID, "comment_id": seed.comment.ID,
			"subject_uri": seed.flagTrack.RecordURI, "subject_cid": trackCID,
			"text": s.commentText, "timestamp_ms": seed.comment.TimestampMS,
		})
		if err != nil {
			t.Fatal(err)
		}
		if out, code := r.cli(string(payload), "enqueue", "pds:comment-create", "-", "--task-id", commentID,
			"--wait", "--wait-timeout", waitBound.String()); code != 0 {
			t.Errorf("enqueue pds:comment-create --wait: exit %d:\n%s", code, out)
		}
		login, refreshed, refreshes, rejected := proxy.tokens()
		s.loginTokens, s.refreshedTokens = login, refreshed
		if len(login) != 2 || refreshes < 1 || len(refreshed) < 2 || rejected < 1 {
			t.Errorf("want a login (2 tokens), an expired access token refused and a refresh (2 tokens); got %d login tokens, %d refused, %d refreshes, %d refreshed tokens",
				len(login), rejected, refreshes, len(refreshed))
		}
		recs := pdstest.ListRecords(t, pdsURL, acct.DID, commentNS)
		if len(recs) != 1 || recs[0].Fields(t)["text"] != s.commentText {
			t.Errorf("the PDS holds %d comment records, want 1 with the comment's text", len(recs))
		}
	}

	out, code := r.cli("", "status", failID, "--wait", "--wait-timeout", waitBound.String())
	if code == 0 || !strings.Contains(out, "archived") {
		t.Errorf("status --wait of a scan that fails for good: exit %d, want non-zero and archived:\n%s", code, out)
	}
	if st := r.waitState(failID, "archived"); !strings.Contains(fmt.Sprint(st["last_error"]), "503") {
		t.Errorf("the failed scan's last error = %v, want the 503", st["last_error"])
	}
	if n := mod.WrongKeys(); n != 0 {
		t.Errorf("the moderation fake refused %d requests for their key: MODERATION_KEY was not used", n)
	}

	// What operators look at: the CLI's status, the API, the dashboard
	// (both accounts, and a wrong password), /metrics.
	ids := []string{flagID, failID}
	if proxy != nil {
		ids = append(ids, commentID)
	}
	for _, id := range ids {
		if out, code := r.cli("", "status", id); code != 0 {
			t.Errorf("status %s: exit %d:\n%s", id, code, out)
		}
		st := r.task(id)
		if id == commentID {
			if p, _ := st["payload"].(map[string]any); p["text"] != "[redacted]" {
				t.Errorf("GET /v1/tasks/%s payload = %v, want its text [redacted]", id, st["payload"])
			}
		}
	}
	if out, code := r.cli("", "status", flagID, "--token", s.wrongToken); code == 0 || !strings.Contains(out, "401") {
		t.Errorf("status with a wrong token: exit %d, want a 401 error:\n%s", code, out)
	}
	if code, body := r.do(e2etest.Request{Path: "/v1/tasks/" + flagID, Token: s.wrongToken}); code != http.StatusUnauthorized {
		t.Errorf("GET /v1/tasks with a wrong token: %d %s, want 401", code, body)
	}
	dash := []struct {
		path, user, pass string
		want             int
		contains         string
	}{
		{"/monitoring/", adminUser, s.adminPass, http.StatusOK, ""},
		{"/monitoring/api/queues", adminUser, s.adminPass, http.StatusOK, deflt},
		{"/monitoring/api/queues", viewUser, s.viewerPass, http.StatusOK, deflt},
		{"/monitoring/api/queues/" + deflt + "/tasks/" + failID, viewUser, s.viewerPass, http.StatusOK, failID},
		{"/monitoring/", adminUser, s.wrongPass, http.StatusUnauthorized, ""},
		{"/monitoring/api/queues", viewUser, s.wrongPass, http.StatusUnauthorized, ""},
		{"/metrics", adminUser, s.adminPass, http.StatusOK, "plyrtasks_tasks_processed_total"},
	}
	if proxy != nil {
		dash = append(dash, struct {
			path, user, pass string
			want             int
			contains         string
		}{"/monitoring/api/queues/" + critical + "/tasks/" + commentID, adminUser, s.adminPass, http.StatusOK, "[redacted]"})
	}
	for _, d := range dash {
		code, body := r.do(e2etest.Request{Path: d.path, User: d.user, Pass: d.pass})
		if code != d.want || !strings.Contains(body, d.contains) {
			t.Errorf("GET %s as %s: %d, want %d with %q:\n%.500s", d.path, d.user, code, d.want, d.contains, body)
		}
	}
	_, metrics := r.do(e2etest.Request{Path: "/metrics", Token: s.apiToken})
	processed := processedByKind(metrics)

	p.Stop(t)
	logs := p.Logs.Bytes()
	all := s.list()

	t.Run("no secret in the logs", func(t *testing.T) { assertNoLeaks(t, "the process's output", logs, all) })
	t.Run("no secret in what the CLI showed", func(t *testing.T) { assertNoLeaks(t, "the CLI's output", r.cliOut.Bytes(), all) })
	t.Run("no secret in what the API showed", func(t *testing.T) { assertNoLeaks(t, "the HTTP answers", r.apiOut.Bytes(), all) })

	recs, bad := parseLogs(logs, format)
	t.Run("format", func(t *testing.T) {
		if len(recs) == 0 {
			t.Fatalf("no %s log record found in %d bytes of output", format, len(logs))
		}
		for _, b := range bad {
			t.Errorf("not a JSON log object: %s", b)
		}
		if format == "text" {
			if i := bytes.IndexByte(logs, 0x1b); i >= 0 {
				t.Errorf("colour (ANSI escape) in text logs written to a pipe, line %d", bytes.Count(logs[:i], []byte("\n"))+1)
			}
		}
	})

	t.Run("one line per task outcome", func(t *testing.T) {
		runs, problems := outcomeRuns(recs)
		for _, p := range problems {
			t.Error(p)
		}
		want := map[string][]string{ // task → "attempt:outcome" per run, in order
			flagID: {"1:ok"},
			failID: {"1:retry", "2:archived"},
		}
		if proxy != nil {
			want[commentID] = []string{"1:ok"}
		}
		got := map[string][]string{}
		perKind := map[string]int{}
		for _, ru := range runs {
			got[ru.ID] = append(got[ru.ID], fmt.Sprintf("%d:%s", ru.Attempt, ru.Outcome))
			perKind[ru.Kind]++
		}
		for id, w := range want {
			if fmt.Sprint(got[id]) != fmt.Sprint(w) {
				t.Errorf("outcome lines of %s = %v, want %v", id, got[id], w)
			}
		}
		// Every run the metrics counted has its line, and no more: for the
		// kinds this test ran (periodic kinds may tick between the scrape
		// and the stop).
		for _, kind := range []string{"copyright:scan", "pds:comment-create"} {
			if kind == "pds:comment-create" && proxy == nil {
				continue
			}
			if perKind[kind] != processed[kind] || processed[kind] == 0 {
				t.Errorf("%s: %d outcome lines, plyrtasks_tasks_processed_total = %d", kind, perKind[kind], processed[kind])
			}
		}
	})
	if t.Failed() {
		t.Logf("CLI output:\n%s", mask(r.cliOut.String(), all))
	}
}
