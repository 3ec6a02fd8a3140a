package control_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/plyr-fm/plyrtasks/control"
	"github.com/plyr-fm/plyrtasks/logging"
)

// TestHTTPErrors checks the status and JSON body of each kind of failure.
func TestHTTPErrors(t *testing.T) {
	e := newEnv(t, false)
	pending := e.enqueue(t, "pds:like", `{}`, "critical")
	ts := httptest.NewServer(e.ctl.HTTPHandler())
	defer ts.Close()

	tests := []struct {
		method, path, body string
		status             int
		field              string
		msgPart            string
	}{
		{"GET", "/v1/tasks?state=failed", "", 400, "state", "must be one of pending, active, scheduled, retry, archived, completed"},
		{"GET", "/v1/tasks?page=abc", "", 400, "page", "whole number"},
		{"GET", "/v1/tasks?queue=nosuch", "", 404, "", `queue "nosuch" (queues: bulk, critical, default)`},
		{"GET", "/v1/tasks/nope", "", 404, "", "task nope"},
		{"POST", "/v1/tasks/" + pending + "/retry", "", 409, "", "is pending"},
		{"POST", "/v1/tasks/nope/cancel", "", 404, "", "not found"},
		{"POST", "/v1/queues/nosuch/pause", "", 404, "", "queue"},
		{"POST", "/v1/strikes", `{"type":"pds:like"}`, 400, "reason", "required"},
		{"POST", "/v1/strikes", `{"type":"pds:like","reason":"x","who":"me"}`, 400, "who", "unknown field"},
		// json would strike the last "type" given (the second newcomer run).
		{"POST", "/v1/strikes", `{"type":"export:media","type":"pds:like","reason":"x"}`, 400, "type", "given more than once"},
		{"POST", "/v1/strikes", `{"type":"pds:nope","reason":"x"}`, 400, "type", "unknown task type"},
		{"POST", "/v1/strikes", `{"type":"pds:like","arg":"nofield","reason":"x"}`, 400, "arg", "field=value"},
		{"DELETE", "/v1/strikes?type=pds:like", "", 404, "", "no such strike"},
		{"DELETE", "/v1/strikes", "", 400, "type", "required"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, ts.URL+tt.path, strings.NewReader(tt.body))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status || resp.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("%d %s %s, want %d JSON", resp.StatusCode, resp.Header.Get("Content-Type"), b, tt.status)
			}
			var body map[string]string
			if err := json.Unmarshal(b, &body); err != nil {
				t.Fatal(err)
			}
			if body["field"] != tt.field || !strings.Contains(body["error"], tt.msgPart) {
				t.Errorf("body %s, want field %q and error containing %q", b, tt.field, tt.msgPart)
			}
		})
	}
}

func TestHTTPStrikeCreated(t *testing.T) {
	e := newEnv(t, false)
	ts := httptest.NewServer(e.ctl.HTTPHandler())
	defer ts.Close()
	resp, err := http.Post(ts.URL+"/v1/strikes", "application/json",
		strings.NewReader(`{"type":"export:media","arg":"artist_did=did:plc:bad","reason":"under review","by":"alice"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&st)
	if resp.StatusCode != http.StatusCreated || st["type"] != "export:media" || st["field"] != "artist_did" ||
		st["value"] != "did:plc:bad" || st["by"] != "api:alice" || st["key"] != "export:media|artist_did=did:plc:bad" {
		t.Errorf("%d %v", resp.StatusCode, st)
	}
}

// TestListTypeFilterTruncates: the scan behind a type filter stops at
// MaxScan and says so.
func TestListTypeFilterTruncates(t *testing.T) {
	e := newEnv(t, false)
	ctl := control.New(e.rc, control.Options{Namespace: ns, Logger: logging.Discard(), MaxScan: 4})
	for i := range 6 {
		kind := "copyright:scan"
		if i >= 4 {
			kind = "export:media" // only after the first 4
		}
		e.enqueue(t, kind, fmt.Sprintf(`{"n":%d}`, i), "default")
	}
	p, err := ctl.List(t.Context(), control.ListOptions{Type: "export:media"})
	if err != nil {
		t.Fatal(err)
	}
	if !p.Truncated || len(p.Tasks) != 0 || p.Total != 6 {
		t.Errorf("page = %+v, want truncated with no task, total 6", p)
	}
	p, err = ctl.List(t.Context(), control.ListOptions{Type: "copyright:scan", PageSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	if p.Truncated || len(p.Tasks) != 2 || !p.HasMore {
		t.Errorf("page = %+v, want 2 scans, more, not truncated", p)
	}
}
