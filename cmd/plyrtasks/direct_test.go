package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/plyr-fm/plyrtasks/app"
	"github.com/plyr-fm/plyrtasks/config"
	"github.com/plyr-fm/plyrtasks/internal/redistest"
	"github.com/plyr-fm/plyrtasks/logging"
)

// run executes the CLI in-process with the current environment.
func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	root := newRootCmd(&out, &out)
	root.SetArgs(args)
	err := root.ExecuteContext(t.Context())
	return out.String(), err
}

// With REDIS_URL set and no --api, enqueue, status and cancel go straight
// to Redis; --wait follows a task a worker (here: `plyrtasks worker`'s
// app, in-process) runs.
func TestDirectMode(t *testing.T) {
	rs := redistest.Start(t, redistest.Options{})
	t.Setenv("REDIS_URL", rs.URL(0))
	t.Setenv("DATA_DIR", t.TempDir())
	t.Setenv("HTTP_ADDR", "127.0.0.1:0")
	t.Setenv("TASK_CHECK_INTERVAL", "100ms")
	t.Setenv("DELAYED_TASK_CHECK_INTERVAL", "100ms")

	// Before any worker: a delayed task stays scheduled, and can be
	// cancelled.
	out, err := run(t, "enqueue", "copyright:scan", `{"track_id":1,"audio_url":"https://cdn.example/1.mp3"}`, "--delay", "1h", "--queue", "bulk")
	m := regexp.MustCompile(`^enqueued copyright:scan (\S+) \(queue bulk, scheduled\)\n$`).FindStringSubmatch(out)
	if err != nil || m == nil {
		t.Fatalf("enqueue: %v\n%s", err, out)
	}
	id := m[1]
	out, err = run(t, "status", id)
	if err != nil || !strings.Contains(out, `"state": "scheduled"`) || !strings.Contains(out, `"queue": "bulk"`) {
		t.Fatalf("status: %v\n%s", err, out)
	}
	// A duplicate (copyright:scan is unique per track) names the first.
	out, err = run(t, "enqueue", "copyright:scan", `{"track_id":1,"audio_url":"https://cdn.example/other.mp3"}`, "--queue", "bulk")
	if err != nil || out != "duplicate copyright:scan: task "+id+" is already queued or running\n" {
		t.Fatalf("duplicate: %v\n%q", err, out)
	}
	out, err = run(t, "cancel", id)
	if err != nil || out != "deleted copyright:scan "+id+" (was scheduled)\n" {
		t.Fatalf("cancel: %v\n%q", err, out)
	}
	if _, err := run(t, "status", id); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("status after cancel: %v", err)
	}
	// Options are checked before anything is sent, named by their flag.
	if _, err := run(t, "enqueue", "copyright:scan", `{"track_id":2,"audio_url":"https://cdn.example/2.mp3"}`, "--timeout", "500ms"); err == nil || !strings.HasPrefix(err.Error(), "--timeout: ") {
		t.Fatalf("bad --timeout: %v", err)
	}

	// With a worker, --wait ends at completed.
	cfg, err := config.Load()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	a, err := app.New(ctx, cfg, logging.Discard())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Worker(ctx) }()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("worker did not stop")
		}
	}()
	out, err = run(t, "enqueue", "copyright:scan", `{"track_id":3,"audio_url":"https://cdn.example/3.mp3"}`, "--wait", "--wait-timeout", "30s", "--poll", "50ms")
	if err != nil || !regexp.MustCompile(`(?m)^completed copyright:scan \S+$`).MatchString(out) {
		t.Fatalf("enqueue --wait: %v\n%s", err, out)
	}
}

// From the second newcomer run: straight to Redis, a struck type was
// enqueued (the API answered 423), and an export's task got a random ID
// instead of its export_id.
func TestDirectModeHonoursStrikesAndExportIDs(t *testing.T) {
	rs := redistest.Start(t, redistest.Options{})
	t.Setenv("REDIS_URL", rs.URL(0))
	t.Setenv("DATA_DIR", t.TempDir())
	t.Setenv("HTTP_ADDR", "127.0.0.1:0")

	if out, err := run(t, "strike", "teal:scrobble", "--reason", "teal outage"); err != nil {
		t.Fatalf("strike: %v\n%s", err, out)
	}
	_, err := run(t, "enqueue", "teal:scrobble", `{"session_id":"s1","track_id":1,"track_title":"a","artist_name":"b"}`)
	if err == nil || !strings.Contains(err.Error(), "teal outage") {
		t.Errorf("enqueue of a struck type = %v, want a refusal naming the strike", err)
	}
	out, err := run(t, "enqueue", "export:media", `{"export_id":"cli-direct-1","artist_did":"did:plc:abc"}`)
	if err != nil || !strings.HasPrefix(out, "enqueued export:media cli-direct-1 ") {
		t.Errorf("enqueue export = %v, %q; want the export ID as the task ID", err, out)
	}
}
