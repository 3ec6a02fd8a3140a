package api

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/hibiken/asynq"

	"github.com/plyr-fm/plyrtasks/client"
	"github.com/plyr-fm/plyrtasks/logging"
	"github.com/plyr-fm/plyrtasks/tasks"
)

// fuzzBodies are real payloads and the nasty inputs the enqueue body is
// seeded with.
var fuzzBodies = []string{
	scan,
	`{"export_id":"01HZX3","artist_did":"did:plc:abc123"}`,
	`{"session_id":"s1","track_id":7,"track_title":"Song","artist_name":"Band","played_at":"2026-01-02T15:04:05Z"}`,
	`{"session_id":"s1","like_id":9,"subject_uri":"at://did:plc:abc/fm.plyr.track/3k2","subject_cid":"bafyreiabc123"}`,
	`{"session_id":"s1","comment_id":5,"subject_uri":"at://did:plc:abc/fm.plyr.track/3k2","subject_cid":"bafyreiabc123","text":"hi","timestamp_ms":1}`,
	``, `null`, `[]`, `"x"`, `{`, `{}{}`, `{"track_id":1e309}`, `{"track_id":"NaN"}`, `{"track_id":{"a":[1]}}`,
	"{\"track_id\":1,\"audio_url\":\"https://x.example/\xff\"}", `{"track_id":1,"track_id":2,"audio_url":"https://x.example/a"}`,
	`{"TRACK_ID":42,"audio_url":"https://x.example/a"}`, `{"unknown":1}`,
	scan + strings.Repeat(" ", tasks.MaxPayloadBytes-len(scan)+1),
	`{"track_id":1,"audio_url":"https://x.example/` + strings.Repeat("a", tasks.MaxPayloadBytes) + `"}`,
}

var fuzzQueries = []string{
	"", "delay=10s", "process_at=2030-01-02T15:04:05Z", "queue=critical&max_retry=0&timeout=30s&task_id=abc-1",
	"unique_for=1h&retention=24h", "delay=-1s", "delay=1s&process_at=2030-01-02T15:04:05Z", "timeout=500ms",
	"max_retry=99999999999999999999", "max_retry=NaN", "queue=fast", "task_id=a%20b", "task_id=" + strings.Repeat("x", 200),
	"delay_s=3", "queue=bulk&queue=critical", "%zz", "a=%", "process_at=0000-01-01T00:00:00Z", "process_at=9999-12-31T23:59:59-23:59",
	"process_at=2030-01-02T15:04:05.999999999Z", "delay=9223372036854775807ns", "timeout=24h0m0.000000001s",
}

// FuzzEnqueue: POST /v1/tasks/{type} with any type, query and body
// answers only 202, 400, 404, 409 or 413 (503 means Redis is down, and it
// is up here), always as JSON with "error" for 4xx and "field" for 400 and
// 413; a body over tasks.MaxPayloadBytes is refused before it is parsed
// and nothing reaches Redis; an accepted task is stored with the
// canonical payload. It never panics.
func FuzzEnqueue(f *testing.F) {
	kinds := append(tasks.All().Kinds(), "", "nope:nothing", "copyright:scan ", "COPYRIGHT:SCAN", "%", "a/b")
	for _, k := range kinds {
		for _, b := range fuzzBodies {
			f.Add(k, "", []byte(b), uint32(0))
		}
	}
	for _, q := range fuzzQueries {
		f.Add("copyright:scan", q, []byte(scan), uint32(0))
		f.Add("export:media", q, []byte(fuzzBodies[1]), uint32(0))
	}
	f.Add("copyright:scan", "", []byte(scan), uint32(tasks.MaxPayloadBytes-len(scan)))
	f.Add("copyright:scan", "", []byte(scan), uint32(tasks.MaxPayloadBytes-len(scan)+1))
	f.Add("copyright:scan", "delay=soon", []byte(scan), uint32(tasks.MaxPayloadBytes))

	rdb := srv.Client(f, srv.DB(f))
	c := client.New(rdb, client.Options{Namespace: "plyr", Fallback: client.FallbackError, Logger: logging.Discard()})
	f.Cleanup(func() { _ = c.Close(context.Background()) })
	a, err := New(Options{Enqueuer: ClientEnqueuer(c, "plyr"), Tasks: NewTasks(rdb, "plyr"), Token: testToken})
	if err != nil {
		f.Fatal(err)
	}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, kind, query string, body []byte, pad uint32) {
		if kind == "." || kind == ".." {
			return // path structure, not a type: ServeMux redirects
		}
		target := "/v1/tasks/" + url.PathEscape(kind)
		if query != "" {
			target += "?" + query
		}
		u, err := url.ParseRequestURI(target)
		if err != nil {
			return // net/http refuses such a request line before any handler
		}
		// pad grows the body (with JSON whitespace) past the size limit
		// without the fuzzer having to write 64 KiB.
		body = append(body, bytes.Repeat([]byte(" "), int(pad%(2*tasks.MaxPayloadBytes)))...)
		r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		r.URL, r.RequestURI = u, target
		r.Header.Set("Authorization", "Bearer "+testToken)
		r.Header.Set("Content-Type", "application/json")

		keysBefore := rdb.DBSize(ctx).Val()
		w := httptest.NewRecorder()
		a.ServeHTTP(w, r)

		if !slices.Contains([]int{202, 400, 404, 409, 413}, w.Code) {
			t.Fatalf("POST %s (%d-byte body): status %d: %s", target, len(body), w.Code, w.Body)
		}
		if ct := w.Header().Get("Content-Type"); ct != "application/json" {
			t.Fatalf("Content-Type %q", ct)
		}
		var resp map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
			t.Fatalf("body is not JSON: %q", w.Body)
		}
		msg, _ := resp["error"].(string)
		field, _ := resp["field"].(string)
		if w.Code >= 400 && msg == "" {
			t.Fatalf("%d without an error message: %s", w.Code, w.Body)
		}
		if (w.Code == 400 || w.Code == 413) && field == "" {
			t.Fatalf("%d without a field: %s", w.Code, w.Body)
		}
		if w.Code == 413 && len(body) <= tasks.MaxPayloadBytes {
			t.Fatalf("413 for a %d-byte body: %s", len(body), w.Body)
		}
		if _, qerr := ParseOptions(u.Query()); len(body) > tasks.MaxPayloadBytes && w.Code == 400 && qerr == nil {
			t.Fatalf("a %d-byte body was parsed (400 on %q) instead of refused as too large", len(body), field)
		}
		if w.Code != 202 {
			if n := rdb.DBSize(ctx).Val(); n != keysBefore {
				t.Fatalf("%d answer, but Redis went from %d to %d keys", w.Code, keysBefore, n)
			}
			return
		}
		checkStored(t, asynq.NewInspectorFromRedisClient(rdb), kind, resp)
		if rdb.DBSize(ctx).Val() > 5000 {
			rdb.FlushDB(ctx) // bounded memory over a long fuzz run
		}
	})
}

// checkStored: an accepted task is in Redis with the canonical payload.
func checkStored(t *testing.T, insp *asynq.Inspector, kind string, resp map[string]any) {
	t.Helper()
	id, _ := resp["id"].(string)
	queue, _ := resp["queue"].(string)
	state, _ := resp["state"].(string)
	if id == "" || resp["type"] != kind || (state != "pending" && state != "scheduled") {
		t.Fatalf("202 body %v", resp)
	}
	info, err := insp.GetTaskInfo("plyr:"+queue, id)
	if err != nil {
		t.Fatalf("202 for task %s in %s, not in Redis: %v", id, queue, err)
	}
	args, err := tasks.All().Decode(kind, info.Payload)
	if err != nil {
		t.Fatalf("stored payload %q does not decode: %v", info.Payload, err)
	}
	canonical, err := tasks.Encode(args)
	if err != nil || !bytes.Equal(canonical, info.Payload) {
		t.Fatalf("stored payload %q is not canonical (%q, %v)", info.Payload, canonical, err)
	}
}

// FuzzParseOptions: any query string is parsed without panicking into
// options or a field error on the parameter at fault; the options a query
// sets print back (Values, which the CLI sends) to the same options.
func FuzzParseOptions(f *testing.F) {
	for _, q := range fuzzQueries {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, query string) {
		q, _ := url.ParseQuery(query) // as r.URL.Query() does
		o, err := ParseOptions(q)
		if err != nil {
			fe, ok := err.(*tasks.FieldError)
			if !ok || fe.Reason == "" {
				t.Fatalf("%q: error %v (%T) is not a field error", query, err, err)
			}
			_, given := q[fe.Field]
			if _, empty := q[""]; fe.Field == `""` && empty {
				given = true // the empty parameter's name
			}
			if !given {
				t.Fatalf("%q: error names %q, which the query does not have", query, fe.Field)
			}
			return
		}
		back, err := ParseOptions(Values(o))
		if err != nil {
			t.Fatalf("%q parses to %+v, whose Values %q do not parse: %v", query, o, Values(o).Encode(), err)
		}
		if !back.ProcessAt.Equal(o.ProcessAt) || !reflect.DeepEqual(withoutTime(back), withoutTime(o)) {
			t.Fatalf("%q parses to %+v; its Values %q parse to %+v", query, o, Values(o).Encode(), back)
		}
		if o.ProcessIn < 0 || o.ProcessIn > MaxDelay || o.Timeout < 0 || o.UniqueFor < 0 || o.Retention < 0 {
			t.Fatalf("%q accepted out-of-range options %+v", query, o)
		}
	})
}

// TestValuesKeepsFractions: FuzzParseOptions's seed: ParseOptions keeps a
// process_at's fraction of a second, Values (what the CLI sends) dropped
// it.
func TestValuesKeepsFractions(t *testing.T) {
	q, _ := url.ParseQuery("process_at=2030-01-02T15:04:05.999999999Z")
	o, err := ParseOptions(q)
	if err != nil {
		t.Fatal(err)
	}
	if got := Values(o).Get("process_at"); got != "2030-01-02T15:04:05.999999999Z" {
		t.Errorf("Values process_at = %q, want 2030-01-02T15:04:05.999999999Z", got)
	}
}

// TestEmptyQueryParameterIsNamed: FuzzEnqueue/685845245a34f9e2: "?=" gave
// a 400 whose field was empty and whose message began ": unknown".
func TestEmptyQueryParameterIsNamed(t *testing.T) {
	for _, query := range []string{"=", "=x&delay=1s"} {
		q, _ := url.ParseQuery(query)
		_, err := ParseOptions(q)
		fe, ok := err.(*tasks.FieldError)
		if !ok || fe.Field != `""` || !strings.HasPrefix(fe.Reason, "unknown query parameter") {
			t.Errorf("%q: %v, want a field error on \"\"", query, err)
		}
	}
}
