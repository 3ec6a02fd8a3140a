package export_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/plyr-fm/plyrtasks/export"
	"github.com/plyr-fm/plyrtasks/store"
)

func do(t *testing.T, method, url, body string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

func TestHTTPAPI(t *testing.T) {
	e := newEnv(t, fileBackend(t), envOptions{})
	if err := e.store.UpsertArtist(context.Background(), store.Artist{DID: artistDID, Handle: "alice.test"}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(e.svc.HTTPHandler())
	defer srv.Close()
	u := srv.URL + "/v1/exports"

	code, hdr, body := do(t, "POST", u, `{"artist_did":"`+artistDID+`"}`)
	var created export.State
	if err := json.Unmarshal(body, &created); err != nil || code != http.StatusAccepted {
		t.Fatalf("POST = %d %s", code, body)
	}
	if created.Status != store.JobPending || created.Phase != export.PhaseQueued || hdr.Get("Location") != "/v1/exports/"+created.ExportID {
		t.Fatalf("POST state %+v location %q", created, hdr.Get("Location"))
	}
	id := created.ExportID

	for _, tc := range []struct {
		name, method, path, body string
		code                     int
		contains                 string
	}{
		{"second request returns the active export", "POST", "/v1/exports/", `{"artist_did":"` + artistDID + `"}`, 200, `"export_id":"` + id + `"`},
		{"bad did", "POST", "", `{"artist_did":"alice"}`, 400, `"field":"artist_did"`},
		{"unknown field", "POST", "", `{"artist":"x"}`, 400, `"field":"artist"`},
		{"field in another case", "POST", "", `{"Artist_DID":"did:plc:x"}`, 400, `"field":"Artist_DID"`},
		{"unknown artist", "POST", "", `{"artist_did":"did:plc:nobody0000000000000000"}`, 404, "not found"},
		{"get", "GET", "/v1/exports/" + id, "", 200, `"status":"pending"`},
		{"get unknown", "GET", "/v1/exports/NOPE", "", 404, "not found"},
		{"events of unknown", "GET", "/v1/exports/NOPE/events", "", 404, "not found"},
		{"list", "GET", "/v1/exports?artist_did=" + artistDID, "", 200, `"export_id":"` + id + `"`},
		{"list needs artist", "GET", "/v1/exports", "", 400, `"field":"artist_did"`},
		{"cancel", "DELETE", "/v1/exports/" + id, "", 200, `"status":"cancelled"`},
		{"cancel again", "DELETE", "/v1/exports/" + id, "", 409, "not queued or running"},
		{"cancel unknown", "DELETE", "/v1/exports/NOPE", "", 404, "not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := srv.URL + tc.path
			if tc.path == "" {
				url = u
			}
			code, _, body := do(t, tc.method, url, tc.body)
			if code != tc.code || !strings.Contains(string(body), tc.contains) {
				t.Fatalf("%s %s = %d %s; want %d containing %s", tc.method, tc.path, code, body, tc.code, tc.contains)
			}
		})
	}

	t.Run("enqueue failure is 503 and the job is failed", func(t *testing.T) {
		e.enq.err = errors.New("redis down")
		defer func() { e.enq.err = nil }()
		code, _, body := do(t, "POST", u, `{"artist_did":"`+artistDID+`"}`)
		// The cause is logged, not shown: it is the server's internals.
		if code != http.StatusServiceUnavailable || !strings.Contains(string(body), "task queue unavailable") || strings.Contains(string(body), "redis down") {
			t.Fatalf("POST with the queue down = %d %s", code, body)
		}
		jobs, _ := e.store.ListJobs(context.Background(), export.Kind, artistDID, 1)
		if len(jobs) != 1 || jobs[0].Status != store.JobFailed {
			t.Fatalf("newest job %+v, want failed", jobs)
		}
	})
}

type sseEvent struct {
	id, event string
	data      []byte
}

// readEvents reads a Server-Sent Events stream until the server closes it.
func readEvents(t *testing.T, r io.Reader) []sseEvent {
	t.Helper()
	var out []sseEvent
	var cur sseEvent
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if cur.event != "" || cur.data != nil {
				out = append(out, cur)
			}
			cur = sseEvent{}
		case strings.HasPrefix(line, ":"): // comment
		case strings.HasPrefix(line, "id: "):
			cur.id = line[4:]
		case strings.HasPrefix(line, "event: "):
			cur.event = line[7:]
		case strings.HasPrefix(line, "data: "):
			cur.data = append(cur.data, line[6:]...)
		default:
			t.Fatalf("malformed event stream line %q", line)
		}
	}
	return out
}

// The event stream sends the state as it changes while the export runs,
// then the final state and an "end" event, and closes.
func TestEventStream(t *testing.T) {
	b := s3Backend(t)
	slow := &faulty{Storage: b.storage, Delay: 3 * time.Millisecond, ReadSize: 64 << 10}
	e := newEnv(t, b, envOptions{storage: slow, interval: 50 * time.Millisecond})
	f := seed(t, e.store, b.storage)
	j, args := e.request(t)
	srv := httptest.NewServer(e.svc.HTTPHandler())
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/v1/exports/" + j.ID + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "text/event-stream" {
		t.Fatalf("events: %s %q", resp.Status, ct)
	}
	events := make(chan []sseEvent, 1)
	go func() { events <- readEvents(t, resp.Body) }()

	runErr := make(chan error, 1)
	go func() { runErr <- e.svc.Run(context.Background(), args, task(j.TaskID, 0, 3, nil)) }()
	if err := <-runErr; err != nil {
		t.Fatal(err)
	}
	var evs []sseEvent
	select {
	case evs = <-events:
	case <-time.After(10 * time.Second):
		t.Fatal("event stream did not end after the export finished")
	}

	if len(evs) < 4 {
		t.Fatalf("%d events, want the queued state, progress while archiving, the final state and end", len(evs))
	}
	var prev export.State
	sawArchiving := false
	for i, ev := range evs[:len(evs)-1] {
		var s export.State
		if ev.event != "progress" || json.Unmarshal(ev.data, &s) != nil {
			t.Fatalf("event %d = %s %s, want a progress State", i, ev.event, ev.data)
		}
		if s.Percent < prev.Percent {
			t.Fatalf("event %d: percent %v after %v", i, s.Percent, prev.Percent)
		}
		sawArchiving = sawArchiving || s.Phase == export.PhaseArchiving
		prev = s
	}
	if !sawArchiving {
		t.Error("no event while archiving")
	}
	if prev.Status != store.JobDone || prev.Percent != 100 || prev.Result == nil || prev.Result.Tracks != len(f.entries) || prev.Result.DownloadURL == "" {
		t.Fatalf("last progress event %+v, want done at 100%% with the result", prev)
	}
	end := evs[len(evs)-1]
	if end.event != "end" || !strings.Contains(string(end.data), `"status":"done"`) {
		t.Fatalf("last event %s %s, want end with status done", end.event, end.data)
	}

	// A finished export's stream is its state and end, at once.
	resp2, err := http.Get(srv.URL + "/v1/exports/" + j.ID + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	if evs := readEvents(t, resp2.Body); len(evs) != 2 || evs[0].event != "progress" || evs[1].event != "end" {
		t.Fatalf("stream of a finished export: %d events", len(evs))
	}
}

// GET presigns the download again, so a link fetched later still works.
func TestGetRefreshesDownloadURL(t *testing.T) {
	b := s3Backend(t)
	e := newEnv(t, b, envOptions{})
	seed(t, e.store, b.storage)
	j, args := e.request(t)
	if err := e.svc.Run(context.Background(), args, task(j.TaskID, 0, 3, nil)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // presigned URLs carry a timestamp in seconds
	st, err := e.svc.Get(context.Background(), j.ID)
	if err != nil {
		t.Fatal(err)
	}
	stored := export.StateOf(e.job(t, j.ID)).Result.DownloadURL
	if st.Result.DownloadURL == stored || !st.Result.URLExpiresAt.After(time.Now().Add(59*time.Minute)) {
		t.Fatalf("Get returned the stored URL or an old expiry: %v", st.Result.URLExpiresAt)
	}
	if got := httpGet(t, st.Result.DownloadURL); int64(len(got)) != st.Result.Size {
		t.Fatalf("fresh URL served %d bytes, want %d", len(got), st.Result.Size)
	}
}
