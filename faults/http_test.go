package faults

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// httpCall does one request to a process (at most 30 s) and returns the
// status and body. header is name, value, name, value…
func httpCall(t testing.TB, method, url string, body io.Reader, header ...string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the answer: %v", method, url, err)
	}
	return resp.StatusCode, b
}

// jsonObject decodes an answer that must be a JSON object.
func jsonObject(t testing.TB, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("answer is not a JSON object: %v: %q", err, b)
	}
	return m
}

// postTask enqueues kind with payload through a serve process' API.
func postTask(t testing.TB, baseURL, kind, payload, query string) (int, map[string]any) {
	t.Helper()
	u := baseURL + "/v1/tasks/" + kind
	if query != "" {
		u += "?" + query
	}
	code, b := httpCall(t, http.MethodPost, u, strings.NewReader(payload), "Content-Type", "application/json")
	return code, jsonObject(t, b)
}

// metrics reads a process' /metrics.
func metrics(t testing.TB, baseURL string) string {
	t.Helper()
	code, b := httpCall(t, http.MethodGet, baseURL+"/metrics", nil)
	if code != http.StatusOK {
		t.Fatalf("/metrics answered %d: %s", code, b)
	}
	return string(b)
}

// metricValue finds series — written as the text format prints it, labels
// in name order: `plyrtasks_fallback_total{kind="x",reason="y"}` — in a
// /metrics body.
func metricValue(body, series string) (float64, bool) {
	for _, line := range strings.Split(body, "\n") {
		rest, ok := strings.CutPrefix(line, series+" ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
		if err != nil {
			return 0, false
		}
		return v, true
	}
	return 0, false
}

// scanPayload is a copyright:scan payload as a producer sends it.
func scanPayload(trackID int64, audioURL string) string {
	return fmt.Sprintf(`{"track_id":%d,"audio_url":%q}`, trackID, audioURL)
}

// checkJSONLogs fails the test for every line of p's output that is not a
// JSON object: with LOG_FORMAT=json everything a process prints, its
// libraries' lines included, belongs to the one stream.
func checkJSONLogs(t testing.TB, p *proc) {
	t.Helper()
	n := 0
	for _, line := range strings.Split(p.Logs(), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil {
			n++
			if n <= 3 {
				t.Errorf("%s printed a line outside the JSON log: %q", p.Name, line)
			}
		}
	}
	if n > 3 {
		t.Errorf("%s printed %d lines outside the JSON log in all", p.Name, n)
	}
}
