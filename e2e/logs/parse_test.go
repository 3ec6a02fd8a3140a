package logs_test

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/plyr-fm/plyrtasks/internal/logcheck"
)

// record is one parsed log line: its level, message and attributes (values
// as the line shows them; numbers and durations as text).
type record struct {
	Line  int // 1-based line number in the logs
	Level string
	Msg   string
	Attrs map[string]string
}

// textAttr matches one key=value of tint's text format: a bare value runs to
// the next space; a value with spaces or quotes is Go-quoted.
var textAttr = regexp.MustCompile(`(?:^| )([A-Za-z_][A-Za-z0-9_.]*)=("(?:[^"\\]|\\.)*"|[^ ]*)`)

// textHead matches the start of a tint line: date, time with milliseconds
// (logging.New's TimeFormat) and the three-letter level.
var textHead = regexp.MustCompile(`^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3} (DBG|INF|WRN|ERR)(?:[+-]\d+)? `)

// parseText parses a line of the text format; ok is false for a line that
// is not the start of a record (a continuation of a multi-line message).
func parseText(line string) (record, bool) {
	m := textHead.FindStringSubmatchIndex(line)
	if m == nil {
		return record{}, false
	}
	r := record{Level: line[m[2]:m[3]], Attrs: map[string]string{}}
	rest := line[m[1]:]
	attrs := textAttr.FindAllStringSubmatchIndex(rest, -1)
	end := len(rest)
	if len(attrs) > 0 {
		end = attrs[0][0]
	}
	r.Msg = strings.TrimSpace(rest[:end])
	for _, a := range attrs {
		k, v := rest[a[2]:a[3]], rest[a[4]:a[5]]
		if strings.HasPrefix(v, `"`) {
			if u, err := strconv.Unquote(v); err == nil {
				v = u
			}
		}
		r.Attrs[k] = v
	}
	return r, true
}

// parseJSON parses a line of the JSON format into a record, or returns why
// it is not a log object.
func parseJSON(line string) (record, error) {
	var obj map[string]any
	if err := json.Unmarshal([]byte(line), &obj); err != nil {
		return record{}, fmt.Errorf("not a JSON object: %w", err)
	}
	r := record{Attrs: map[string]string{}}
	for _, k := range []string{"time", "level", "msg"} {
		if _, ok := obj[k]; !ok {
			return record{}, fmt.Errorf("no %q key", k)
		}
	}
	r.Level, _ = obj["level"].(string)
	r.Msg, _ = obj["msg"].(string)
	for k, v := range obj {
		switch k {
		case "time", "level", "msg":
			continue
		}
		if s, ok := v.(string); ok {
			r.Attrs[k] = s
		} else {
			b, _ := json.Marshal(v)
			r.Attrs[k] = string(b)
		}
	}
	return r, nil
}

// parseLogs splits logs into records. In the JSON format every non-empty
// line must be one log object: each line that is not is returned in bad.
// In the text format lines that do not start a record are continuations of
// a multi-line message and are skipped.
func parseLogs(logs []byte, format string) (recs []record, bad []string) {
	sc := bufio.NewScanner(bytes.NewReader(logs))
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			continue
		}
		var r record
		if format == "json" {
			var err error
			if r, err = parseJSON(line); err != nil {
				bad = append(bad, fmt.Sprintf("line %d: %v: %.200q", n, err, line))
				continue
			}
		} else {
			var ok bool
			if r, ok = parseText(line); !ok {
				continue
			}
		}
		r.Line = n
		recs = append(recs, r)
	}
	if err := sc.Err(); err != nil {
		bad = append(bad, fmt.Sprintf("after line %d: %v", n, err))
	}
	return recs, bad
}

// outcomeMessages are the messages of job's one line per task run
// (job.Logging), by outcome.
var outcomeMessages = map[string]string{
	"ok":          "task completed",
	"inline":      "task completed in-process",
	"retry":       "task failed, will retry",
	"archived":    "task archived",
	"failed":      "task failed",
	"struck":      "task skipped: struck",
	"cancelled":   "task cancelled by an operator",
	"interrupted": "task interrupted, will run again",
}

// run is one task run as its outcome line tells it.
type run struct {
	Kind, ID, Outcome string
	Attempt           int
	Line              int
}

// outcomeRuns returns the task runs logged in recs, and a problem for each
// outcome line that lacks its kind, id, attempt or a known outcome, or whose
// message does not match its outcome, and for each run (task ID and
// attempt) logged more than once.
func outcomeRuns(recs []record) (runs []run, problems []string) {
	seen := map[string]int{} // id/attempt → line of its first outcome line
	isOutcomeMsg := map[string]bool{}
	for _, m := range outcomeMessages {
		isOutcomeMsg[m] = true
	}
	for _, r := range recs {
		_, hasOutcome := r.Attrs["outcome"]
		if !hasOutcome && !isOutcomeMsg[r.Msg] {
			continue
		}
		ru := run{Kind: r.Attrs["kind"], ID: r.Attrs["id"], Outcome: r.Attrs["outcome"], Line: r.Line}
		a, err := strconv.Atoi(r.Attrs["attempt"])
		ru.Attempt = a
		switch {
		case ru.Kind == "" || ru.ID == "" || ru.Outcome == "":
			problems = append(problems, fmt.Sprintf("line %d: outcome line without kind, id or outcome: %q %v", r.Line, r.Msg, keys(r.Attrs)))
			continue
		case err != nil || a < 1:
			problems = append(problems, fmt.Sprintf("line %d: outcome line of %s without a valid attempt (%q)", r.Line, ru.ID, r.Attrs["attempt"]))
			continue
		case outcomeMessages[ru.Outcome] == "":
			problems = append(problems, fmt.Sprintf("line %d: unknown outcome %q", r.Line, ru.Outcome))
			continue
		case outcomeMessages[ru.Outcome] != r.Msg:
			problems = append(problems, fmt.Sprintf("line %d: outcome %q logged as %q, want %q", r.Line, ru.Outcome, r.Msg, outcomeMessages[ru.Outcome]))
		}
		k := fmt.Sprintf("%s/%d", ru.ID, ru.Attempt)
		if first, dup := seen[k]; dup {
			problems = append(problems, fmt.Sprintf("line %d: run %s (attempt %d) has a second outcome line; the first is line %d", r.Line, ru.ID, ru.Attempt, first))
			continue
		}
		seen[k] = r.Line
		runs = append(runs, ru)
	}
	return runs, problems
}

func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// processedMetric matches one series of plyrtasks_tasks_processed_total.
var processedMetric = regexp.MustCompile(`(?m)^plyrtasks_tasks_processed_total\{kind="([^"]+)"\} (\d+)$`)

// processedByKind reads plyrtasks_tasks_processed_total per kind from a
// /metrics answer.
func processedByKind(metrics string) map[string]int {
	out := map[string]int{}
	for _, m := range processedMetric.FindAllStringSubmatch(metrics, -1) {
		n, _ := strconv.Atoi(m[2])
		out[m[1]] = n
	}
	return out
}

// secret is a value that must appear nowhere: Name says which one in a
// failure message (the value itself is never printed).
type secret struct {
	Name  string
	Value string
}

// assertNoLeaks fails t once per occurrence of any secret in out (raw or
// encoded, see logcheck.Find), naming the secret, the source and the line,
// and printing the line with every secret masked.
func assertNoLeaks(t *testing.T, source string, out []byte, secrets []secret) {
	t.Helper()
	if len(bytes.TrimSpace(out)) == 0 {
		t.Errorf("%s: nothing captured: nothing was checked", source)
		return
	}
	values := make([]string, len(secrets))
	for i, s := range secrets {
		values[i] = s.Value
	}
	leaks, err := logcheck.Find(out, values...)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(out, []byte("\n"))
	for _, l := range leaks {
		line := ""
		if l.Line-1 < len(lines) {
			line = mask(string(lines[l.Line-1]), secrets)
		}
		t.Errorf("%s leaks %s (%s) on line %d:\n\t%.600s", source, secrets[l.Secret].Name, l.Encoding, l.Line, line)
	}
}

// mask replaces every form of every secret in line (the forms logcheck
// looks for) by <NAME>, so a failure can show the line.
func mask(line string, secrets []secret) string {
	for _, s := range secrets {
		for _, f := range forms(s.Value) {
			line = strings.ReplaceAll(line, f, "<"+s.Name+">")
		}
	}
	return line
}

// forms are the encodings of v that logcheck.Find searches for.
func forms(v string) []string {
	j, _ := json.Marshal(v)
	var plain bytes.Buffer
	enc := json.NewEncoder(&plain)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	pj := bytes.TrimSuffix(plain.Bytes(), []byte("\n"))
	q := strconv.Quote(v)
	return []string{
		v, string(j[1 : len(j)-1]), string(pj[1 : len(pj)-1]), q[1 : len(q)-1],
		url.QueryEscape(v), url.PathEscape(v),
		base64.StdEncoding.EncodeToString([]byte(v)), base64.RawStdEncoding.EncodeToString([]byte(v)),
		base64.URLEncoding.EncodeToString([]byte(v)), base64.RawURLEncoding.EncodeToString([]byte(v)),
	}
}

func TestParseText(t *testing.T) {
	tests := []struct {
		name  string
		line  string
		ok    bool
		level string
		msg   string
		attrs map[string]string
	}{
		{
			name:  "outcome line",
			line:  `2025-12-04 06:24:00.123 INF task completed kind=copyright:scan id=e2e-scan queue=plyr:default attempt=1 duration=1.5ms outcome=ok`,
			ok:    true,
			level: "INF", msg: "task completed",
			attrs: map[string]string{"kind": "copyright:scan", "id": "e2e-scan", "queue": "plyr:default", "attempt": "1", "duration": "1.5ms", "outcome": "ok"},
		},
		{
			name:  "quoted value with spaces and an equals sign",
			line:  `2025-12-04 06:24:00.123 ERR task archived kind=copyright:scan id=x attempt=2 outcome=archived error="moderation: HTTP 503 a=b \"quoted\""`,
			ok:    true,
			level: "ERR", msg: "task archived",
			attrs: map[string]string{"kind": "copyright:scan", "id": "x", "attempt": "2", "outcome": "archived", "error": `moderation: HTTP 503 a=b "quoted"`},
		},
		{
			name: "message without attributes", line: `2025-12-04 06:24:00.123 WRN shutting down`,
			ok: true, level: "WRN", msg: "shutting down", attrs: map[string]string{},
		},
		{name: "continuation of a multi-line message", line: `!!! NOTHING IS DURABLE: every queued task is lost !!!`, ok: false},
		{name: "coloured line (not the plain format)", line: "\x1b[2m2025-12-04 06:24:00.123\x1b[0m INF task completed", ok: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, ok := parseText(tt.line)
			if ok != tt.ok {
				t.Fatalf("parseText ok = %v, want %v", ok, tt.ok)
			}
			if !ok {
				return
			}
			if r.Level != tt.level || r.Msg != tt.msg {
				t.Errorf("level, msg = %q, %q; want %q, %q", r.Level, r.Msg, tt.level, tt.msg)
			}
			if fmt.Sprint(r.Attrs) != fmt.Sprint(tt.attrs) {
				t.Errorf("attrs = %v, want %v", r.Attrs, tt.attrs)
			}
		})
	}
}

func TestParseLogsJSON(t *testing.T) {
	logs := strings.Join([]string{
		`{"time":"2025-12-04T06:24:00Z","level":"INFO","msg":"task completed","kind":"pds:like","id":"a","attempt":1,"outcome":"ok"}`,
		``,
		`plain text from something that bypassed the logger`,
		`{"time":"2025-12-04T06:24:00Z","level":"INFO","msg":"cut off`,
		`{"level":"INFO","msg":"no time"}`,
		`["an","array"]`,
	}, "\n")
	recs, bad := parseLogs([]byte(logs), "json")
	if len(recs) != 1 || recs[0].Attrs["attempt"] != "1" || recs[0].Attrs["id"] != "a" || recs[0].Line != 1 {
		t.Errorf("records = %+v, want the first line alone", recs)
	}
	wantBad := []string{"line 3:", "line 4:", "line 5:", "line 6:"}
	if len(bad) != len(wantBad) {
		t.Fatalf("bad lines = %q, want %d", bad, len(wantBad))
	}
	for i, w := range wantBad {
		if !strings.HasPrefix(bad[i], w) {
			t.Errorf("bad[%d] = %q, want prefix %q", i, bad[i], w)
		}
	}
}

func TestOutcomeRuns(t *testing.T) {
	rec := func(line int, msg string, kv ...string) record {
		r := record{Line: line, Msg: msg, Attrs: map[string]string{}}
		for i := 0; i+1 < len(kv); i += 2 {
			r.Attrs[kv[i]] = kv[i+1]
		}
		return r
	}
	tests := []struct {
		name     string
		recs     []record
		runs     int
		problems []string // substrings, one per problem, in order
	}{
		{
			name: "a retry then an archive, and an unrelated line",
			recs: []record{
				rec(1, "plyrtasks listening", "http", "x"),
				rec(2, "task failed, will retry", "kind", "k", "id", "a", "attempt", "1", "outcome", "retry"),
				rec(3, "task archived", "kind", "k", "id", "a", "attempt", "2", "outcome", "archived"),
			},
			runs: 2,
		},
		{
			name: "the same run logged twice",
			recs: []record{
				rec(1, "task completed", "kind", "k", "id", "a", "attempt", "1", "outcome", "ok"),
				rec(7, "task completed", "kind", "k", "id", "a", "attempt", "1", "outcome", "ok"),
			},
			runs:     1,
			problems: []string{"line 7: run a (attempt 1) has a second outcome line; the first is line 1"},
		},
		{
			name: "outcome message without the task's id",
			recs: []record{
				rec(4, "task archived", "kind", "k", "attempt", "1", "outcome", "archived"),
			},
			problems: []string{"line 4: outcome line without kind, id or outcome"},
		},
		{
			name: "outcome attribute on another message",
			recs: []record{
				rec(5, "something else", "kind", "k", "id", "b", "attempt", "1", "outcome", "ok"),
			},
			runs:     1,
			problems: []string{`line 5: outcome "ok" logged as "something else"`},
		},
		{
			name:     "no attempt",
			recs:     []record{rec(6, "task completed", "kind", "k", "id", "c", "outcome", "ok")},
			problems: []string{"line 6: outcome line of c without a valid attempt"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runs, problems := outcomeRuns(tt.recs)
			if len(runs) != tt.runs {
				t.Errorf("runs = %+v, want %d", runs, tt.runs)
			}
			if len(problems) != len(tt.problems) {
				t.Fatalf("problems = %q, want %d", problems, len(tt.problems))
			}
			for i, p := range tt.problems {
				if !strings.Contains(problems[i], p) {
					t.Errorf("problem %d = %q, want it to contain %q", i, problems[i], p)
				}
			}
		})
	}
}

func TestProcessedByKind(t *testing.T) {
	metrics := `# HELP plyrtasks_tasks_processed_total task runs that finished
# TYPE plyrtasks_tasks_processed_total counter
plyrtasks_tasks_processed_total{kind="copyright:scan"} 3
plyrtasks_tasks_processed_total{kind="pds:comment-create"} 1
plyrtasks_tasks_failed_total{kind="copyright:scan"} 2
`
	got := processedByKind(metrics)
	want := map[string]int{"copyright:scan": 3, "pds:comment-create": 1}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("processedByKind = %v, want %v", got, want)
	}
}

func TestMask(t *testing.T) {
	secrets := []secret{{"API_TOKEN", "tok-3b9f0c1d2e"}, {"comment text", `say "hi" & bye`}}
	line := `{"msg":"x","auth":"Bearer tok-3b9f0c1d2e","body":"say \"hi\" & bye","q":"say+%22hi%22+%26+bye"}`
	got := mask(line, secrets)
	want := `{"msg":"x","auth":"Bearer <API_TOKEN>","body":"<comment text>","q":"<comment text>"}`
	if got != want {
		t.Errorf("mask =\n\t%s\nwant\n\t%s", got, want)
	}
	leaks, err := logcheck.Find([]byte(got), secrets[0].Value, secrets[1].Value)
	if err != nil || len(leaks) != 0 {
		t.Errorf("the masked line still holds a secret: %v %v", leaks, err)
	}
}
