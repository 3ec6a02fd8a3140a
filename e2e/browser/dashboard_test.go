package browser_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/chromedp"

	"github.com/plyr-fm/plyrtasks/e2e/e2etest"
	"github.com/plyr-fm/plyrtasks/internal/logcheck"
)

// browserBudget bounds everything after the binary is built: start-up,
// seeding the tasks and every browser step.
const browserBudget = 60 * time.Second

// Accounts of the dashboard under test, and the comment text that must never
// be shown.
const (
	adminUser   = "admin"
	adminPass   = "admin-pw-5b1f0c9e"
	viewerUser  = "viewer"
	viewerPass  = "viewer-pw-77d2aa41"
	wrongPass   = "not-the-password-3c0d"
	sessionKey  = "ZTJlLWJyb3dzZXItc2Vzc2lvbi1rZXktMzItYnl0ZXM="
	commentText = "browser-secret-comment: meet me at the old mill 91f3"
)

// Tasks seeded through the HTTP API, with fixed IDs so the browser can open
// them by URL.
const (
	scanID    = "e2e-scan"    // copyright:scan, completed
	unlikeID  = "e2e-unlike"  // pds:unlike without a session, archived
	commentID = "e2e-comment" // pds:comment-create, scheduled an hour out
	critical  = "plyr:critical"
	deflt     = "plyr:default"
)

// TestDashboardInChromium logs in to the real dashboard in headless
// Chromium and checks what an operator and a viewer see:
//
//   - a wrong password gets the 401 page, not the dashboard;
//   - the admin sees the namespaced queues, a completed task's result, an
//     archived task's error, a comment task with its text "[redacted]", and
//     the controls to change tasks;
//   - the viewer sees the same queues without any control, and the API
//     refuses a delete sent from the viewer's page.
//
// Each page is saved as a full-page PNG under PLYRTASKS_ARTIFACTS_DIR.
func TestDashboardInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs Chromium")
	}
	chromium := findChromium(t)
	artifacts := artifactDir(t)
	bin := e2etest.Build(t)

	ctx, cancel := context.WithTimeout(t.Context(), browserBudget)
	defer cancel()

	p := e2etest.Start(t, bin, e2etest.Env(t.TempDir(), e2etest.FreeAddr(t),
		"LOG_FORMAT=json",
		"DASHBOARD_USER="+adminUser, "DASHBOARD_PASSWORD="+adminPass,
		"DASHBOARD_VIEWER_USER="+viewerUser, "DASHBOARD_VIEWER_PASSWORD="+viewerPass,
		"SESSION_ENCRYPTION_KEY="+sessionKey,
	), "serve")
	p.WaitReady(t)
	seed := seedTasks(t, p)

	browser := startBrowser(t, ctx, chromium)

	t.Run("wrong password is refused", func(t *testing.T) {
		tab := openTab(t, browser, adminUser, wrongPass)
		tab.navigate(t, p.Base+"/monitoring/")
		text := tab.waitText(t, "authentication required")
		if strings.Contains(text, critical) || strings.Contains(text, "Queues") {
			t.Errorf("a wrong password shows the dashboard:\n%s", text)
		}
		if n := tab.credentialsSent(); n == 0 {
			t.Error("the basic-auth challenge never reached the test: the 401 page proves nothing")
		}
		tab.screenshot(t, artifacts, "dashboard-login-refused.png")
	})

	t.Run("admin", func(t *testing.T) {
		tab := openTab(t, browser, adminUser, adminPass)

		tab.navigate(t, p.Base+"/monitoring/")
		text := tab.waitText(t, critical, deflt)
		if tab.credentialsSent() == 0 {
			t.Error("no basic-auth challenge was answered: the dashboard did not ask for a login")
		}
		// asynqmon shows the queue controls (pause, delete) in an
		// "Actions" column, for admins only.
		if !strings.Contains(text, "Actions") {
			t.Errorf("the admin's queue table has no Actions column:\n%s", text)
		}
		tab.screenshot(t, artifacts, "dashboard-queues-admin.png")

		tab.navigate(t, p.Base+"/monitoring/queues/"+critical+"/tasks/"+unlikeID)
		text = tab.waitText(t, unlikeID, seed.unlikeError)
		if !strings.Contains(text, "pds:unlike") || !strings.Contains(text, "nobody-e2e") {
			t.Errorf("archived task page lacks its type or payload:\n%s", text)
		}
		tab.screenshot(t, artifacts, "dashboard-task-archived.png")

		tab.navigate(t, p.Base+"/monitoring/queues/"+deflt+"/tasks/"+scanID)
		// No such track in the store: the scan completes as "track
		// deleted", and its result is shown.
		tab.waitText(t, scanID, "completed", "Result:", `"status": "track deleted"`)
		tab.screenshot(t, artifacts, "dashboard-task-completed.png")

		// The payload formatter shows indented JSON: the other fields as
		// they are, the text replaced.
		tab.navigate(t, p.Base+"/monitoring/queues/"+critical+"/tasks/"+commentID)
		text = tab.waitText(t, commentID, "pds:comment-create", `"text": "[redacted]"`, `"session_id": "sess-e2e"`, "did:plc:e2eviewer")
		if strings.Contains(text, commentText) || tab.htmlContains(t, commentText) {
			t.Errorf("the comment text is on the task page:\n%s", text)
		}
		tab.screenshot(t, artifacts, "dashboard-task-comment.png")

		// The list of scheduled tasks shows payloads too (and IDs cut
		// short).
		tab.navigate(t, p.Base+"/monitoring/queues/"+critical+"?status=scheduled")
		text = tab.waitText(t, "pds:comment-create", `"text": "[redacted]"`, `"session_id": "sess-e2e"`)
		if strings.Contains(text, commentText) || tab.htmlContains(t, commentText) {
			t.Errorf("the comment text is on the scheduled list:\n%s", text)
		}
		tab.screenshot(t, artifacts, "dashboard-scheduled-admin.png")

		tab.navigate(t, p.Base+"/monitoring/queues/"+critical+"?status=archived")
		text = tab.waitText(t, "Last Error", seed.unlikeError)
		if !tab.exists(t, selectAll) || !strings.Contains(text, "Actions") {
			t.Errorf("the admin's archived list has no task controls (select-all checkbox %q, Actions column):\n%s", selectAll, text)
		}
		tab.screenshot(t, artifacts, "dashboard-archived-admin.png")
	})

	t.Run("viewer is read-only", func(t *testing.T) {
		tab := openTab(t, browser, viewerUser, viewerPass)

		tab.navigate(t, p.Base+"/monitoring/")
		text := tab.waitText(t, critical, deflt)
		if strings.Contains(text, "Actions") {
			t.Errorf("the viewer's queue table has an Actions column:\n%s", text)
		}
		tab.screenshot(t, artifacts, "dashboard-queues-viewer.png")

		tab.navigate(t, p.Base+"/monitoring/queues/"+critical+"?status=archived")
		text = tab.waitText(t, "Last Error", seed.unlikeError)
		if tab.exists(t, selectAll) || strings.Contains(text, "Actions") {
			t.Errorf("the viewer's archived list offers task controls:\n%s", text)
		}
		tab.screenshot(t, artifacts, "dashboard-archived-viewer.png")

		// The controls are hidden, and the API behind them refuses too: a
		// delete sent from the viewer's logged-in page.
		del := "/monitoring/api/queues/" + critical + "/archived_tasks/" + unlikeID
		status := tab.fetchStatus(t, "DELETE", del)
		if status != 405 {
			t.Errorf("viewer DELETE %s = %d, want 405 (read-only)", del, status)
		}
		if code, body := p.Do(t, e2etest.Request{Path: "/monitoring/api/queues/" + critical + "/tasks/" + unlikeID, User: adminUser, Pass: adminPass}); code != 200 {
			t.Errorf("the archived task is gone after the viewer's delete: %d %s", code, body)
		}
	})

	p.Stop(t)
	logcheck.AssertNoSecrets(t, p.Logs.Bytes(), adminPass, viewerPass, wrongPass, sessionKey, commentText)
}

// selectAll is the checkbox that selects every task of a list for a batch
// action; asynqmon renders it only when the dashboard is not read-only.
const selectAll = `input[aria-label="select all tasks shown in the table"]`

type seeded struct {
	unlikeError string // the archived task's error message
}

// seedTasks enqueues, through the HTTP API: a copyright scan that
// completes, an unlike whose session does not exist (archived at once,
// max_retry 0) and a comment scheduled an hour out, so it stays put.
func seedTasks(t *testing.T, p *e2etest.Proc) seeded {
	t.Helper()
	enqueue := func(kind, query, body string) {
		t.Helper()
		code, resp := p.Do(t, e2etest.Request{Method: "POST", Path: "/v1/tasks/" + kind + "?" + query, Body: body})
		if code != 202 {
			t.Fatalf("POST /v1/tasks/%s?%s: %d %s", kind, query, code, resp)
		}
	}
	enqueue("copyright:scan", "task_id="+scanID, `{"track_id":4242,"audio_url":"https://cdn.example/e2e.mp3"}`)
	enqueue("pds:unlike", "task_id="+unlikeID+"&max_retry=0", `{"session_id":"nobody-e2e","like_uri":"at://did:plc:e2eviewer/fm.plyr.like/3kabc"}`)
	payload, err := json.Marshal(map[string]any{
		"session_id": "sess-e2e", "comment_id": 7, "subject_uri": "at://did:plc:e2eviewer/fm.plyr.track/3kxyz",
		"subject_cid": "bafyreib2rxk3rh6kzwq3j3q2ndhxkbqvbdz7a6zxyrnkmznmxkszyxwrvu", "text": commentText, "timestamp_ms": 12000,
	})
	if err != nil {
		t.Fatal(err)
	}
	enqueue("pds:comment-create", "task_id="+commentID+"&delay=1h", string(payload))

	waitState(t, p, scanID, "completed")
	st := waitState(t, p, unlikeID, "archived")
	msg, _ := st["last_error"].(string)
	if msg == "" {
		t.Fatalf("archived task without an error message: %v", st)
	}
	if st := waitState(t, p, commentID, "scheduled"); strings.Contains(fmt.Sprint(st), commentText) {
		t.Fatalf("the task API shows the comment text: %v", st)
	}
	return seeded{unlikeError: msg}
}

func waitState(t *testing.T, p *e2etest.Proc, id, want string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var st map[string]any
	for time.Now().Before(deadline) {
		_, body := p.Do(t, e2etest.Request{Path: "/v1/tasks/" + id})
		st = nil
		_ = json.Unmarshal([]byte(body), &st)
		if st["state"] == want {
			return st
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("task %s never %s: %v", id, want, st)
	return nil
}

// findChromium returns the browser binary, or skips (fails with
// PLYRTASKS_REQUIRE_BROWSER=1) when there is none.
func findChromium(t *testing.T) string {
	t.Helper()
	path := os.Getenv("PLYRTASKS_CHROMIUM")
	if path == "" {
		path = "/usr/bin/chromium"
		if _, err := os.Stat(path); err != nil {
			if p, err := exec.LookPath("chromium"); err == nil {
				path = p
			}
		}
	}
	if _, err := os.Stat(path); err != nil {
		msg := fmt.Sprintf("\n"+
			"################################################################\n"+
			"## NO CHROMIUM at %s (%v)\n"+
			"## The dashboard's browser test needs Debian's chromium package:\n"+
			"##     apt-get install -y chromium\n"+
			"## (or set PLYRTASKS_CHROMIUM to a Chromium/Chrome binary)\n"+
			"################################################################", path, err)
		if os.Getenv("PLYRTASKS_REQUIRE_BROWSER") == "1" {
			t.Fatal(msg + "\nPLYRTASKS_REQUIRE_BROWSER=1: failing instead of skipping")
		}
		t.Skip(msg)
	}
	return path
}

// artifactDir is PLYRTASKS_ARTIFACTS_DIR (created), or a temporary
// directory.
func artifactDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("PLYRTASKS_ARTIFACTS_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		t.Fatalf("PLYRTASKS_ARTIFACTS_DIR: %v", err)
	}
	t.Logf("screenshots go to %s", abs)
	return abs
}

// startBrowser runs headless Chromium with a fresh profile and none of its
// background connections (the machine has no network; they would only fail
// noisily). Its output is logged when the test fails.
func startBrowser(t *testing.T, ctx context.Context, path string) context.Context {
	t.Helper()
	out := &logcheck.Buffer{}
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("window-size", "1280,1000"),
		chromedp.CombinedOutput(out),
	)
	browser, cancelBrowser := chromedp.NewContext(alloc, chromedp.WithErrorf(t.Logf))
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
		if t.Failed() {
			t.Logf("chromium output:\n%s", out.Bytes())
		}
	})
	// The first action starts the browser; tabs are opened from it.
	if err := chromedp.Do(browser, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium %s: %v\n%s", path, err, out.Bytes())
	}
	return browser
}

// tab is one browser tab in its own browser context (its own cookies and
// HTTP auth cache), logging in as one account.
type tab struct {
	ctx context.Context

	mu   sync.Mutex
	sent int // challenges answered with the credentials
}

// openTab opens a tab that answers the dashboard's basic-auth challenge
// through CDP's Fetch domain: every request is paused and continued, and
// each authRequired gets the credentials once; a challenge repeated for the
// same request (the credentials were refused) is cancelled, so the page
// shows the server's 401 answer.
func openTab(t *testing.T, browser context.Context, user, pass string) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	tb := &tab{ctx: ctx}

	paused := chromedp.Events(ctx, fetch.RequestPaused)
	auth := chromedp.Events(ctx, fetch.AuthRequired)
	go func() {
		for ev, err := range paused {
			if err != nil {
				return
			}
			_, _ = chromedp.Call(ctx, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: ev.RequestID})
		}
	}()
	go func() {
		answered := map[fetch.RequestID]bool{}
		for ev, err := range auth {
			if err != nil {
				return
			}
			resp := &fetch.AuthChallengeResponse{Response: fetch.AuthChallengeResponseResponseCancelAuth}
			if !answered[ev.RequestID] {
				answered[ev.RequestID] = true
				resp = &fetch.AuthChallengeResponse{
					Response: fetch.AuthChallengeResponseResponseProvideCredentials,
					Username: user, Password: pass,
				}
				tb.mu.Lock()
				tb.sent++
				tb.mu.Unlock()
			}
			_, _ = chromedp.Call(ctx, fetch.ContinueWithAuth, fetch.ContinueWithAuthParams{RequestID: ev.RequestID, AuthChallengeResponse: resp})
		}
	}()
	if _, err := chromedp.Call(ctx, fetch.Enable, fetch.EnableParams{HandleAuthRequests: new(true)}); err != nil {
		t.Fatalf("Fetch.enable: %v", err)
	}
	return tb
}

func (tb *tab) credentialsSent() int {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return tb.sent
}

func (tb *tab) navigate(t *testing.T, u string) {
	t.Helper()
	if err := chromedp.Do(tb.ctx, chromedp.Navigate(u)); err != nil {
		t.Fatalf("navigate %s: %v", u, err)
	}
}

// waitText waits until the page's visible text contains every one of want
// (the React app renders after the page loads, and fetches its data after
// that), and returns the text.
func (tb *tab) waitText(t *testing.T, want ...string) string {
	t.Helper()
	js, _ := json.Marshal(want)
	cond := fmt.Sprintf(`document.body && %s.every(w => document.body.innerText.includes(w))`, js)
	if err := chromedp.Do(tb.ctx, chromedp.Poll[chromedp.Void](cond,
		chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		t.Fatalf("page never showed all of %q: %v\npage text:\n%s", want, err, tb.text(t))
	}
	return tb.text(t)
}

func (tb *tab) text(t *testing.T) string {
	t.Helper()
	s, err := chromedp.Run(tb.ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	if err != nil {
		t.Fatalf("read page text: %v", err)
	}
	return s
}

// htmlContains reports whether s is anywhere in the document's HTML,
// hidden elements and attributes included.
func (tb *tab) htmlContains(t *testing.T, s string) bool {
	t.Helper()
	js, _ := json.Marshal(s)
	ok, err := chromedp.Run(tb.ctx, chromedp.Evaluate[bool](fmt.Sprintf(`document.documentElement.outerHTML.includes(%s)`, js)))
	if err != nil {
		t.Fatalf("read page HTML: %v", err)
	}
	return ok
}

func (tb *tab) exists(t *testing.T, css string) bool {
	t.Helper()
	js, _ := json.Marshal(css)
	ok, err := chromedp.Run(tb.ctx, chromedp.Evaluate[bool](fmt.Sprintf(`document.querySelector(%s) !== null`, js)))
	if err != nil {
		t.Fatalf("query %s: %v", css, err)
	}
	return ok
}

// fetchStatus sends a request from the page (with the tab's login) and
// returns the response status.
func (tb *tab) fetchStatus(t *testing.T, method, path string) int {
	t.Helper()
	u, _ := json.Marshal((&url.URL{Path: path}).EscapedPath())
	m, _ := json.Marshal(method)
	status, err := chromedp.Run(tb.ctx, chromedp.Evaluate[int](
		fmt.Sprintf(`fetch(%s, {method: %s}).then(r => r.status)`, u, m), chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("fetch %s %s from the page: %v", method, path, err)
	}
	return status
}

// screenshot saves the whole page as a PNG in dir.
func (tb *tab) screenshot(t *testing.T, dir, name string) {
	t.Helper()
	png, err := chromedp.Run(tb.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}
