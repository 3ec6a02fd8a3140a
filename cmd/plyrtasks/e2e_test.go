package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/plyr-fm/plyrtasks/config"
	"github.com/plyr-fm/plyrtasks/export/audiogen"
	"github.com/plyr-fm/plyrtasks/storage"
	"github.com/plyr-fm/plyrtasks/store"
)

// syncBuffer is a bytes.Buffer safe for the process's writer goroutine and
// the test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// buildBinary compiles this command into dir.
func buildBinary(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "plyrtasks")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// e2eEnv is the whole environment of the processes: embedded Redis and
// SQLite (no REDIS_URL, no DATABASE_URL, no API_TOKEN), a free port, a
// dashboard account so its authentication is exercised.
func e2eEnv(dataDir, addr string) []string {
	return []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + dataDir,
		"DATA_DIR=" + dataDir,
		"HTTP_ADDR=" + addr,
		"LOG_FORMAT=json",
		"TASK_CHECK_INTERVAL=100ms",
		"DASHBOARD_USER=admin",
		"DASHBOARD_PASSWORD=e2e-dashboard-pw",
	}
}

// TestEndToEnd builds plyrtasks, runs `serve` on embedded defaults, and
// enqueues through the HTTP API and the CLI: the tasks complete, the
// failure exits non-zero, and everything shows in /metrics and the
// dashboard's API. SIGTERM then stops the process cleanly.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	addr := freeAddr(t)
	base := "http://" + addr
	env := e2eEnv(filepath.Join(dir, "data"), addr)

	logs := &syncBuffer{}
	serve := exec.Command(bin, "serve")
	serve.Env = env
	serve.Stdout, serve.Stderr = logs, logs
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- serve.Wait() }()
	t.Cleanup(func() {
		_ = serve.Process.Kill()
		if t.Failed() {
			t.Logf("serve logs:\n%s", logs.String())
		}
	})
	waitReady(t, base, exited)

	// 1. Through the HTTP API.
	httpID := postTask(t, base, "copyright:scan", `{"track_id":42,"audio_url":"https://cdn.example/a.mp3"}`)
	st := pollState(t, base, httpID, "completed")
	if st["type"] != "copyright:scan" || st["queue"] != "default" {
		t.Errorf("status = %v", st)
	}

	// 2. Through the CLI, found by HTTP_ADDR (no flag): --wait ends at
	// completed with exit 0 ...
	out, code := runCLI(t, bin, env, "enqueue", "copyright:scan", `{"track_id":43,"audio_url":"https://cdn.example/b.mp3"}`, "--wait", "--wait-timeout", "60s")
	if code != 0 || !regexp.MustCompile(`(?m)^completed copyright:scan \S+$`).MatchString(out) {
		t.Fatalf("enqueue --wait: exit %d\n%s", code, out)
	}
	cliID := regexp.MustCompile(`(?m)^enqueued copyright:scan (\S+) `).FindStringSubmatch(out)
	if cliID == nil {
		t.Fatalf("no task ID in %q", out)
	}
	out, code = runCLI(t, bin, env, "status", cliID[1])
	var cst map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &cst) != nil || cst["state"] != "completed" || cst["id"] != cliID[1] {
		t.Fatalf("status: exit %d\n%s", code, out)
	}
	// ... and a task that fails (no such session: archived, no retry)
	// exits non-zero with the reason.
	out, code = runCLI(t, bin, env, "enqueue", "pds:unlike", `{"session_id":"nobody","like_uri":"at://did:plc:x/fm.plyr.like/1"}`, "--max-retry", "0", "--wait", "--wait-timeout", "60s")
	if code != 1 || !strings.Contains(out, "archived") {
		t.Fatalf("failing task: exit %d, want 1\n%s", code, out)
	}
	// Bad input is refused naming the field, before anything is queued.
	out, code = runCLI(t, bin, env, "enqueue", "copyright:scan", `{"track_id":-1,"audio_url":"https://x.example/a"}`)
	if code == 0 || !strings.Contains(out, "track_id") {
		t.Fatalf("invalid payload: exit %d\n%s", code, out)
	}

	// An export on embedded defaults: requested through /v1/exports (the
	// export service, mounted behind the API's auth), followed by the CLI's
	// status --wait with its progress bar; the task ID is the export ID.
	exportID := requestExport(t, base, filepath.Join(dir, "data"))
	out, code = runCLI(t, bin, env, "status", exportID, "--wait", "--wait-timeout", "60s")
	if code != 0 || !regexp.MustCompile(`(?m)^\[#{30}\]  100%  done`).MatchString(out) || !strings.Contains(out, `"state": "completed"`) {
		t.Fatalf("status --wait of the export: exit %d\n%s", code, out)
	}

	// 3. /metrics counts both scans for their kind, and the failure.
	metrics := get(t, base+"/metrics", "")
	for _, want := range []string{
		`plyrtasks_tasks_processed_total{kind="copyright:scan"} 2`,
		`plyrtasks_tasks_archived_total{kind="pds:unlike"} 1`,
		`plyrtasks_queue_stats_up{queue="plyr:default"} 1`,
	} {
		if !strings.Contains(metrics, want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	// 4. The dashboard's API, behind its authentication.
	if code := statusOf(t, base+"/monitoring/api/queues", ""); code != http.StatusUnauthorized {
		t.Errorf("dashboard without credentials: %d, want 401", code)
	}
	var qs struct {
		Queues []struct {
			Queue     string `json:"queue"`
			Processed int    `json:"processed"`
			Succeeded int    `json:"succeeded"`
			Completed int    `json:"completed"`
		} `json:"queues"`
	}
	if err := json.Unmarshal([]byte(get(t, base+"/monitoring/api/queues", "admin:e2e-dashboard-pw")), &qs); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, q := range qs.Queues {
		if q.Queue == "plyr:default" {
			found = true
			if q.Processed != 2 || q.Succeeded != 2 || q.Completed != 2 {
				t.Errorf("dashboard plyr:default = %+v, want 2 processed, succeeded and completed", q)
			}
		}
	}
	if !found {
		t.Errorf("dashboard queues %+v lack plyr:default", qs.Queues)
	}

	// 5. SIGTERM: a clean, prompt stop.
	if err := serve.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("serve exited with %v", err)
		}
	case <-time.After(40 * time.Second):
		t.Fatal("serve did not stop within 40s of SIGTERM")
	}
	l := logs.String()
	for _, want := range []string{"EMBEDDED, IN-MEMORY Redis", "worker stopped"} {
		if !strings.Contains(l, want) {
			t.Errorf("logs lack %q", want)
		}
	}
	if strings.Contains(l, "e2e-dashboard-pw") {
		t.Error("the dashboard password appears in the logs")
	}
}

// requestExport seeds an artist with three generated tracks into the
// running serve's store and storage (the same SQLite file and directory),
// and requests their export.
func requestExport(t *testing.T, base, dataDir string) string {
	t.Helper()
	ctx := t.Context()
	cfg, err := config.LoadEnv(map[string]string{"DATA_DIR": dataDir})
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, store.Options{DataDir: dataDir})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	obj, err := storage.FromConfig(ctx, cfg.Storage, dataDir)
	if err != nil {
		t.Fatal(err)
	}
	const did = "did:plc:e2eartist"
	if err := st.UpsertArtist(ctx, store.Artist{DID: did, Handle: "e2e.test"}); err != nil {
		t.Fatal(err)
	}
	for i, title := range []string{"One", "Two", "Three"} {
		key := fmt.Sprintf("audio/e2e-%d.wav", i)
		tone := audiogen.Tone{Freq: 220 * float64(i+1)}.ForSize(1 << 20)
		if _, err := storage.Put(ctx, obj, key, tone.Reader(), storage.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := st.CreateTrack(ctx, store.Track{ArtistDID: did, Title: title, FileKey: key, FileType: "wav"}); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.Post(base+"/v1/exports", "application/json", strings.NewReader(`{"artist_did":"`+did+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		ExportID string `json:"export_id"`
		TaskID   string `json:"task_id"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&r)
	if resp.StatusCode != http.StatusAccepted || r.ExportID == "" {
		t.Fatalf("POST /v1/exports: %d %+v", resp.StatusCode, r)
	}
	return r.ExportID
}

func waitReady(t *testing.T, base string, exited <-chan error) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			t.Fatalf("serve exited before it was ready: %v", err)
		default:
		}
		if resp, err := http.Get(base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("serve not ready after 60s")
}

func postTask(t *testing.T, base, kind, body string) string {
	t.Helper()
	resp, err := http.Post(base+"/v1/tasks/"+kind, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&r)
	if resp.StatusCode != http.StatusAccepted || r["id"] == nil {
		t.Fatalf("POST %s: %d %v", kind, resp.StatusCode, r)
	}
	return r["id"].(string)
}

func pollState(t *testing.T, base, id, want string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var st map[string]any
	for time.Now().Before(deadline) {
		st = nil
		_ = json.Unmarshal([]byte(get(t, base+"/v1/tasks/"+id, "")), &st)
		if st["state"] == want {
			return st
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("task %s never %s: %v", id, want, st)
	return nil
}

// get fetches url (basic auth "user:pass" when given) and fails on non-200.
func get(t *testing.T, url, userpass string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if u, p, ok := strings.Cut(userpass, ":"); ok {
		req.SetBasicAuth(u, p)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 && !strings.Contains(url, "/v1/tasks/") {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return string(b)
}

func statusOf(t *testing.T, url, userpass string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if u, p, ok := strings.Cut(userpass, ":"); ok {
		req.SetBasicAuth(u, p)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// runCLI runs the binary with args and returns its combined output and
// exit code.
func runCLI(t *testing.T, bin string, env []string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return out.String(), 0
	case errors.As(err, &ee):
		return out.String(), ee.ExitCode()
	}
	t.Fatalf("run %v: %v", args, err)
	return "", -1
}
