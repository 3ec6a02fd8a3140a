package app

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/plyr-fm/plyrtasks/logging"
	"github.com/plyr-fm/plyrtasks/store"
)

// serveApp runs Serve over a fresh Redis database and returns its base URL.
func serveApp(t *testing.T, env map[string]string) string {
	_, base := serveAppWith(t, env)
	return base
}

func serveAppWith(t *testing.T, env map[string]string) (*App, string) {
	t.Helper()
	if env == nil {
		env = map[string]string{}
	}
	env["REDIS_URL"] = srv.URL(srv.DB(t))
	cfg := testConfig(t, env)
	ctx, cancel := context.WithCancel(t.Context())
	a, err := New(ctx, cfg, logging.Discard())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("Serve did not return after cancel")
		}
	})
	select {
	case <-a.Listening():
	case err := <-done:
		t.Fatalf("Serve returned early: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("not listening after 10s")
	}
	return a, "http://" + a.Addr().String()
}

// serveExportArtist serves an app whose store holds one artist, with the
// bulk queue paused so that an export stays queued while a test looks.
func serveExportArtist(t *testing.T) (base, did string) {
	t.Helper()
	a, base := serveAppWith(t, nil)
	did = "did:plc:exportartist0000000000000"
	if err := a.store.UpsertArtist(t.Context(), store.Artist{DID: did, Handle: "exporter.test"}); err != nil {
		t.Fatal(err)
	}
	if code, body := do(t, "POST", base+"/v1/queues/bulk/pause", ""); code != 200 {
		t.Fatalf("pause: %d %s", code, body)
	}
	return base, did
}

func do(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// The task controls and strikes are wired into serve: a strike on one
// argument value refuses that enqueue with 423 and lets others through,
// the strike is listed, restore lifts it; tasks are listed by state and
// type; DELETE /v1/tasks/{id} is the controls' cancel.
func TestServeWiresStrikesAndControls(t *testing.T) {
	base := serveApp(t, nil)
	scan := func(track int) (int, string) {
		return do(t, "POST", base+"/v1/tasks/copyright:scan?delay=1h",
			`{"track_id":`+itoa(track)+`,"audio_url":"https://cdn.example/x.mp3"}`)
	}

	code, body := do(t, "POST", base+"/v1/strikes", `{"type":"copyright:scan","arg":"track_id=13","reason":"bad uploader"}`)
	if code != 200 && code != 201 {
		t.Fatalf("strike: %d %s", code, body)
	}
	if code, body := scan(13); code != http.StatusLocked || !strings.Contains(body, "bad uploader") {
		t.Errorf("enqueue of a struck argument = %d %s, want 423 naming the reason", code, body)
	}
	code, body = scan(14)
	if code != http.StatusAccepted {
		t.Fatalf("enqueue of another argument = %d %s, want 202", code, body)
	}
	var enq struct{ ID, State string }
	if err := json.Unmarshal([]byte(body), &enq); err != nil || enq.State != "scheduled" {
		t.Fatalf("enqueue answer %s (%v)", body, err)
	}
	if code, body := do(t, "GET", base+"/v1/strikes", ""); code != 200 || !strings.Contains(body, `track_id=13`) {
		t.Errorf("GET /v1/strikes = %d %s", code, body)
	}
	if code, body := do(t, "DELETE", base+"/v1/strikes?type=copyright:scan&arg=track_id%3D13", ""); code != 200 {
		t.Errorf("restore = %d %s", code, body)
	}
	if code, body := scan(13); code != http.StatusAccepted {
		t.Errorf("enqueue after restore = %d %s, want 202", code, body)
	}

	code, body = do(t, "GET", base+"/v1/tasks?state=scheduled&type=copyright:scan", "")
	if code != 200 || !strings.Contains(body, enq.ID) {
		t.Fatalf("list scheduled scans = %d %s, want it to hold %s", code, body, enq.ID)
	}
	code, body = do(t, "DELETE", base+"/v1/tasks/"+enq.ID, "")
	if code != 200 || !strings.Contains(body, `"state":"deleted"`) || !strings.Contains(body, `"previous_state":"scheduled"`) {
		t.Fatalf("DELETE /v1/tasks/%s = %d %s", enq.ID, code, body)
	}
	if code, _ := do(t, "GET", base+"/v1/tasks/"+enq.ID, ""); code != 404 {
		t.Errorf("cancelled task still found: %d", code)
	}
	if code, body := do(t, "POST", base+"/v1/queues/default/pause", ""); code != 200 || !strings.Contains(body, `"paused":true`) {
		t.Errorf("pause = %d %s", code, body)
	}
}

// POST /v1/tasks/export:media goes through the export service: the job
// row exists before any worker runs it, keeps the payload's export_id,
// a second request for the artist is a 409 duplicate naming the first, and
// an unknown artist is a 400 naming artist_did.
func TestServeGenericExportEnqueueRecordsTheJob(t *testing.T) {
	base, did := serveExportArtist(t)
	code, body := do(t, "POST", base+"/v1/tasks/export:media", `{"export_id":"exp-one","artist_did":"`+did+`"}`)
	if code != http.StatusAccepted || !strings.Contains(body, `"id":"exp-one"`) {
		t.Fatalf("enqueue = %d %s, want 202 with id exp-one", code, body)
	}
	if code, body := do(t, "GET", base+"/v1/exports/exp-one", ""); code != 200 || !strings.Contains(body, `"queued"`) {
		t.Errorf("GET /v1/exports/exp-one = %d %s, want 200 queued", code, body)
	}
	code, body = do(t, "POST", base+"/v1/tasks/export:media", `{"export_id":"exp-two","artist_did":"`+did+`"}`)
	if code != http.StatusConflict || !strings.Contains(body, `"id":"exp-one"`) {
		t.Errorf("second export = %d %s, want 409 naming exp-one", code, body)
	}
	code, body = do(t, "POST", base+"/v1/tasks/export:media", `{"export_id":"exp-3","artist_did":"did:plc:nobody00000000000000000000"}`)
	if code != http.StatusBadRequest || !strings.Contains(body, `"field":"artist_did"`) {
		t.Errorf("unknown artist = %d %s, want 400 naming artist_did", code, body)
	}
}

// Found by the newcomer run: the README's export command run twice (the
// SQLite store outlives serve) answered 500 with a raw UNIQUE-constraint
// error, and a struck export answered 503 "queue unavailable".
func TestServeExportIDReuseAndStrikes(t *testing.T) {
	base, did := serveExportArtist(t)
	req := `{"export_id":"dev-demo","artist_did":"` + did + `"}`
	if code, body := do(t, "POST", base+"/v1/tasks/export:media", req); code != http.StatusAccepted {
		t.Fatalf("first = %d %s", code, body)
	}
	// The same request again: the same export, as a duplicate.
	if code, body := do(t, "POST", base+"/v1/tasks/export:media", req); code != http.StatusConflict || !strings.Contains(body, `"id":"dev-demo"`) {
		t.Errorf("same request again = %d %s, want 409 naming dev-demo", code, body)
	}
	// Cancelled, its ID is spent: a clear 400 naming export_id.
	if code, body := do(t, "DELETE", base+"/v1/exports/dev-demo", ""); code != 200 {
		t.Fatalf("cancel = %d %s", code, body)
	}
	if code, body := do(t, "POST", base+"/v1/tasks/export:media", req); code != http.StatusBadRequest || !strings.Contains(body, `"field":"export_id"`) {
		t.Errorf("reusing a cancelled export's ID = %d %s, want 400 naming export_id", code, body)
	}

	if code, body := do(t, "POST", base+"/v1/strikes", `{"type":"export:media","arg":"artist_did=`+did+`","reason":"abuse report"}`); code != 200 && code != 201 {
		t.Fatalf("strike: %d %s", code, body)
	}
	for _, r := range []struct{ path, body string }{
		{"/v1/tasks/export:media", `{"export_id":"after-strike","artist_did":"` + did + `"}`},
		{"/v1/exports", `{"artist_did":"` + did + `"}`},
	} {
		if code, body := do(t, "POST", base+r.path, r.body); code != http.StatusLocked || !strings.Contains(body, "abuse report") {
			t.Errorf("POST %s while struck = %d %s, want 423 with the reason", r.path, code, body)
		}
	}
}

// The newcomer run: on a fresh start the dashboard listed no queue (asynq
// lists a queue only after its first task) while /v1/queues listed three.
func TestServeDashboardListsEveryQueueFromTheStart(t *testing.T) {
	base := serveApp(t, nil)
	code, body := do(t, "GET", base+"/monitoring/api/queues", "")
	for _, q := range []string{"plyr:critical", "plyr:default", "plyr:bulk"} {
		if code != 200 || !strings.Contains(body, `"queue":"`+q+`"`) {
			t.Errorf("GET /monitoring/api/queues = %d %.300s, want it to list %s", code, body, q)
		}
	}
}

// From the second newcomer run: DELETE /v1/exports/{id} on a queued export
// marked the row cancelled but left its task pending, to run (and fail)
// after the queue resumed.
func TestServeCancellingAQueuedExportDeletesItsTask(t *testing.T) {
	base, did := serveExportArtist(t)
	if code, body := do(t, "POST", base+"/v1/tasks/export:media", `{"export_id":"queued-1","artist_did":"`+did+`"}`); code != http.StatusAccepted {
		t.Fatalf("enqueue = %d %s", code, body)
	}
	if code, body := do(t, "DELETE", base+"/v1/exports/queued-1", ""); code != 200 || !strings.Contains(body, `"cancelled"`) {
		t.Fatalf("cancel = %d %s", code, body)
	}
	if code, body := do(t, "GET", base+"/v1/tasks/queued-1", ""); code != http.StatusNotFound {
		t.Errorf("the cancelled export's task = %d %s, want 404 (deleted)", code, body)
	}
}
