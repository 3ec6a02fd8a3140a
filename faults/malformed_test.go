package faults

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/plyr-fm/plyrtasks/job"
	"github.com/plyr-fm/plyrtasks/tasks"
)

// secretMarker is a value inside malformed payloads that must never show
// up in a log: a bad payload is reported by field, not echoed.
const secretMarker = "s3cr3t-payload-marker"

// TestMalformedTasksInRedisAreArchived writes malformed tasks straight
// into Redis with asynq.Client — what an old producer, a bug or an
// attacker with Redis access leaves behind: invalid JSON, wrong field
// types, values failing validation, unknown fields, an oversized payload,
// an unknown task type, and a payload that is not JSON for every
// registered type — interleaved with good tasks, on a running worker. Each
// bad task is archived on its first run (Retried 0, however many retries
// it was given) with the reason as its last error, exactly as the
// payload's decoder states it; the good ones complete; the worker never
// panics, keeps taking tasks, counts the bad ones under bounded metric
// labels and logs no payload.
func TestMalformedTasksInRedisAreArchived(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOptions{})
	wk := w.start(t, "worker", "worker", "WORKER_CONCURRENCY", "4")
	ctx := context.Background()
	scanURL := "https://cdn.example/a.mp3"

	type bad struct {
		name    string
		kind    string
		payload string
		// mention is what the reason must name: the field, or the limit
		mention string
	}
	cases := []bad{
		{"truncated JSON", "copyright:scan", `{"track_id":`, "(body)"},
		{"binary garbage", "copyright:scan", "\x00\xff\xfe\x01garbage " + secretMarker, "(body)"},
		{"JSON array", "copyright:scan", `[1,2,3]`, "(body)"},
		{"JSON string", "copyright:scan", `"` + secretMarker + `"`, "(body)"},
		{"null", "copyright:scan", `null`, "track_id"},
		{"empty", "copyright:scan", ``, "track_id"},
		{"string for a number", "copyright:scan", `{"track_id":"42","audio_url":"` + scanURL + `"}`, "track_id"},
		{"number out of range", "copyright:scan", `{"track_id":1e400,"audio_url":"` + scanURL + `"}`, "track_id"},
		{"float for an integer", "copyright:scan", `{"track_id":4.5,"audio_url":"` + scanURL + `"}`, "track_id"},
		{"object for a string", "copyright:scan", `{"track_id":4,"audio_url":{"u":"` + secretMarker + `"}}`, "audio_url"},
		{"failing validation", "copyright:scan", `{"track_id":-3,"audio_url":"ftp://` + secretMarker + `"}`, "track_id"},
		{"URL not http", "copyright:scan", `{"track_id":3,"audio_url":"javascript:` + secretMarker + `"}`, "audio_url"},
		{"unknown field", "copyright:scan", `{"track_id":3,"audio_url":"` + scanURL + `","token":"` + secretMarker + `"}`, "token"},
		{"trailing data", "copyright:scan", `{"track_id":3,"audio_url":"` + scanURL + `"}{"x":1}`, "(body)"},
		{"nested too deep", "copyright:scan", `{"track_id":` + strings.Repeat("[", 20000), "(body)"},
		{"oversized", "copyright:scan", `{"track_id":3,"audio_url":"https://cdn.example/` + strings.Repeat("a", tasks.MaxPayloadBytes) + `","x":"` + secretMarker + `"}`, "payload too large"},
		{"session ID missing", "pds:like", `{"like_id":1,"subject_uri":"at://did:plc:a/fm.plyr.track/1","subject_cid":"bafyreiabcdefgh"}`, "session_id"},
		{"comment too long", "pds:comment-create", `{"session_id":"s","comment_id":1,"subject_uri":"at://did:plc:a/fm.plyr.track/1","subject_cid":"bafyreiabcdefgh","text":"` + strings.Repeat("x", tasks.MaxCommentLength+1) + `"}`, "text"},
		{"bad time", "pds:comment-update", `{"session_id":"s","comment_id":1,"comment_uri":"at://did:plc:a/fm.plyr.comment/1","subject_uri":"at://did:plc:a/fm.plyr.track/1","subject_cid":"bafyreiabcdefgh","text":"hi","created_at":"yesterday"}`, "created_at"},
		{"unknown type", "no:such-kind", `{"track_id":1}`, "no:such-kind"},
		{"unknown type with garbage", "x:y", "\xff\xfe" + secretMarker, `"x:y"`},
	}
	for _, d := range tasks.All().Defs() {
		cases = append(cases, bad{"not JSON for " + d.Kind, d.Kind, `not json ` + secretMarker, "(body)"})
	}

	// The reason a worker must give: the decoder's own error, or the
	// registry's for a type it does not know.
	reasonOf := func(c bad) string {
		if _, ok := tasks.All().Lookup(c.kind); !ok {
			return fmt.Sprintf("%s %q: no handler registered in this worker", tasks.ErrUnknownKind, c.kind)
		}
		_, err := tasks.All().Decode(c.kind, []byte(c.payload))
		if err == nil {
			t.Fatalf("%s: the decoder accepts %q", c.name, c.payload)
		}
		return "invalid payload: " + err.Error()
	}

	var good []ref
	enqueueGood := func(prefix string, n int) {
		for i := range n {
			tr, u := w.scanTrack(t, fmt.Sprintf("%s-%d", prefix, i), "")
			good = append(good, w.enqueue(t, tasks.CopyrightScanArgs{TrackID: tr.ID, AudioURL: u}))
		}
	}
	ac := asynq.NewClientFromRedisClient(w.uc)
	t.Cleanup(func() { _ = ac.Close() })
	bads := make([]ref, len(cases))
	enqueueGood("before", 5)
	for i, c := range cases {
		q := tasks.QueueDefault
		if d, ok := tasks.All().Lookup(c.kind); ok {
			q = d.Opts.Queue
		}
		info, err := ac.EnqueueContext(ctx, asynq.NewTask(c.kind, []byte(c.payload)),
			asynq.Queue(w.queue(q)), asynq.MaxRetry(25), asynq.Retention(time.Hour))
		if err != nil {
			t.Fatalf("%s: write the task: %v", c.name, err)
		}
		bads[i] = ref{Kind: c.kind, Queue: info.Queue, ID: info.ID}
		if i%5 == 0 {
			enqueueGood(fmt.Sprintf("mid%d", i), 1)
		}
	}
	enqueueGood("after", 5)

	archived := w.waitStates(t, bads, 30*time.Second, asynq.TaskStateArchived)
	for i, c := range cases {
		ti := archived[bads[i].ID]
		want := reasonOf(c)
		if ti.Retried != 0 || ti.LastErr != want {
			t.Errorf("%s: archived after %d retries with %q; want 0 retries and %q", c.name, ti.Retried, ti.LastErr, want)
		}
		if !strings.Contains(ti.LastErr, c.mention) {
			t.Errorf("%s: reason %q does not name %s", c.name, ti.LastErr, c.mention)
		}
		if strings.Contains(ti.LastErr, secretMarker) {
			t.Errorf("%s: reason %q echoes the payload (the dashboard shows it)", c.name, ti.LastErr)
		}
	}
	w.waitStates(t, good, 30*time.Second, asynq.TaskStateCompleted)
	for _, g := range good {
		if ti := w.info(g); ti.Retried != 0 {
			t.Errorf("good task %s completed after %d retries", g.ID, ti.Retried)
		}
	}
	// Still taking tasks after all that.
	start := time.Now()
	n := len(good)
	enqueueGood("later", 5)
	w.waitStates(t, good[n:], 15*time.Second, asynq.TaskStateCompleted)
	t.Logf("%d malformed tasks archived, %d good ones completed; 5 more completed %s later",
		len(cases), len(good), time.Since(start).Round(time.Millisecond))

	select {
	case <-wk.Exited():
		t.Fatalf("the worker exited: %v", wk.ExitErr())
	default:
	}
	logs := wk.Logs()
	for _, s := range []string{"panic", secretMarker} {
		if strings.Contains(logs, s) {
			t.Errorf("the worker's log contains %q", s)
		}
	}
	// Metrics: the archived runs per kind, unknown types under one label.
	want := map[string]int{}
	for _, c := range cases {
		k := c.kind
		if _, ok := tasks.All().Lookup(k); !ok {
			k = job.UnknownKind
		}
		want[k]++
	}
	m := metrics(t, wk.URL)
	for k, n := range want {
		got, _ := metricValue(m, fmt.Sprintf("plyrtasks_tasks_archived_total{kind=%q}", k))
		if int(got) != n {
			t.Errorf("plyrtasks_tasks_archived_total{kind=%q} = %v, want %d", k, got, n)
		}
	}
	for _, c := range cases {
		if _, ok := tasks.All().Lookup(c.kind); !ok && strings.Contains(m, c.kind) {
			t.Errorf("/metrics names the undeclared type %q: labels must stay bounded", c.kind)
		}
	}
	checkJSONLogs(t, wk)
}

// TestOversizedPayloadsNeverReachRedis sends payloads over
// tasks.MaxPayloadBytes (64 KiB) to a running `plyrtasks serve`, with and
// without Content-Length, and through the CLI straight to Redis: each is
// refused naming the limit (the API with 413), and no task of the type
// reaches Redis. (The handler-level 413 and the Go client's
// ErrPayloadTooLarge are covered in package api's and client's tests.)
func TestOversizedPayloadsNeverReachRedis(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOptions{})
	srv := w.start(t, "serve", "serve")
	ctx := context.Background()

	// A like whose body is over the limit (its subject URI padded with
	// insignificant whitespace after the JSON object's last member).
	like := `{"session_id":"s1","like_id":7,"subject_uri":"at://did:plc:a/fm.plyr.track/1","subject_cid":"bafyreiabcdefgh"}`
	over := like[:len(like)-1] + strings.Repeat(" ", tasks.MaxPayloadBytes) + "}"

	for _, chunked := range []bool{false, true} {
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/v1/tasks/pds:like", strings.NewReader(over))
		if err != nil {
			t.Fatal(err)
		}
		if chunked {
			req.ContentLength = -1 // no Content-Length: Transfer-Encoding chunked
		}
		resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		got := jsonObject(t, b)
		if resp.StatusCode != http.StatusRequestEntityTooLarge || got["field"] != "(body)" ||
			!strings.Contains(fmt.Sprint(got["error"]), "payload too large") {
			t.Errorf("chunked=%v: %d %s; want 413 naming the body and the limit", chunked, resp.StatusCode, b)
		}
	}
	file := filepath.Join(t.TempDir(), "like.json")
	if err := os.WriteFile(file, []byte(over), 0o600); err != nil {
		t.Fatal(err)
	}
	out, exit := bin.Run(t, w.env, 60*time.Second, "enqueue", "pds:like", "@"+file, "--direct")
	if exit == 0 || !strings.Contains(out, "payload too large") {
		t.Errorf("plyrtasks enqueue --direct: exit %d, %q; want a failure saying payload too large", exit, out)
	}

	// Nothing of pds:like reached Redis, in any state.
	q := w.queue(tasks.QueueCritical)
	keys, err := w.uc.Keys(ctx, "asynq:{"+q+"}:t:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 0 {
		t.Errorf("%d task hashes in %s after refused enqueues: %v", len(keys), q, keys)
	}
	// The same like within the limit is taken.
	code, body := postTask(t, srv.URL, "pds:like", like, "")
	if code != http.StatusAccepted || body["outcome"] != "enqueued" {
		t.Errorf("the like within the limit: %d %v, want 202 enqueued", code, body)
	}
	if keys, _ := w.uc.Keys(ctx, "asynq:{"+q+"}:t:*").Result(); len(keys) != 1 {
		t.Errorf("%d task hashes in %s after one accepted like, want 1", len(keys), q)
	}
}
