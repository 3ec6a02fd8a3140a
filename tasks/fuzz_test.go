package tasks_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/plyr-fm/plyrtasks/tasks"
)

// validPayloads are real payloads of every declared kind, as producers send
// them: the seeds every fuzz corpus starts from.
var validPayloads = map[string]string{
	"copyright:scan":             `{"track_id":42,"audio_url":"https://cdn.example/a.mp3"}`,
	"copyright:sync-resolutions": `{}`,
	"export:media":               `{"export_id":"01HZX3","artist_did":"did:plc:abc123"}`,
	"atproto:sync":               `{"session_id":"s1","did":"did:plc:abc123"}`,
	"teal:scrobble":              `{"session_id":"s1","track_id":7,"track_title":"Song","artist_name":"Band","duration":215,"album_name":"LP","played_at":"2026-01-02T15:04:05.123+01:00"}`,
	"album:list-sync":            `{"session_id":"s1","album_id":3}`,
	"pds:like":                   `{"session_id":"s1","like_id":9,"subject_uri":"at://did:plc:abc/fm.plyr.track/3k2","subject_cid":"bafyreiabc123"}`,
	"pds:unlike":                 `{"session_id":"s1","like_uri":"at://did:plc:abc/fm.plyr.like/3k2"}`,
	"pds:comment-create":         `{"session_id":"s1","comment_id":5,"subject_uri":"at://did:plc:abc/fm.plyr.track/3k2","subject_cid":"bafyreiabc123","text":"nice <drop> & all","timestamp_ms":61000}`,
	"pds:comment-update":         `{"session_id":"s1","comment_id":5,"comment_uri":"at://did:plc:abc/fm.plyr.comment/3k3","subject_uri":"at://did:plc:abc/fm.plyr.track/3k2","subject_cid":"bafyreiabc123","text":"edited","timestamp_ms":0,"created_at":"2026-01-02T15:04:05Z"}`,
	"pds:comment-delete":         `{"session_id":"s1","comment_uri":"at://did:plc:abc/fm.plyr.comment/3k3"}`,
}

// nastyPayloads are inputs every decoder must refuse cleanly (or accept
// and canonicalise): huge numbers, NaN-ish strings, nested objects,
// invalid UTF-8, duplicate and case-variant keys, null, unknown fields,
// trailing data, oversized bodies.
var nastyPayloads = []string{
	``, ` `, `null`, `true`, `0`, `"x"`, `[]`, `[{}]`, `{`, `}`, `{}{}`, `{} x`, `{"a":1}`,
	`{"track_id":1e309}`, `{"track_id":99999999999999999999}`, `{"track_id":-9223372036854775808}`,
	`{"track_id":9223372036854775807,"audio_url":"https://x.example/a"}`,
	`{"track_id":"NaN"}`, `{"track_id":NaN}`, `{"track_id":Infinity}`, `{"track_id":-0}`, `{"track_id":0.5}`, `{"track_id":1e2}`,
	`{"track_id":{"track_id":1}}`, `{"track_id":[1]}`, `{"track_id":null,"audio_url":null}`,
	`{"session_id":"\xff\xfe","did":"did:plc:\xc3"}`, `{"session_id":"\u0000","did":"did:\ud800:x"}`,
	`{"track_id":1,"track_id":2,"audio_url":"https://x.example/a"}`,
	`{"TRACK_ID":42,"Audio_URL":"https://x.example/a"}`,
	`{"session_id":"s","track_id":1,"track_title":"a","artist_name":"b","played_at":"yesterday"}`,
	`{"session_id":"s","track_id":1,"track_title":"a","artist_name":"b","played_at":"2020-01-01T00:00:00-00:00"}`,
	`{"session_id":"s","track_id":1,"track_title":"a","artist_name":"b","played_at":{}}`,
	`{"session_id":"s","track_id":1,"track_title":"a","artist_name":"b","duration":-1}`,
	`{"session_id":"s","track_id":1,"track_title":"a","artist_name":"b","duration":4294967296}`,
	`{"export_id":"x","artist_did":"did:plc:x","extra":{"nested":[1,2,{"deep":null}]}}`,
	`{"session_id":"s","like_id":1,"subject_uri":"at://did:plc:x/c/` + strings.Repeat("<", 12000) + `","subject_cid":"bafyreiabc123"}`,
	`{"track_id":1,"audio_url":"https://x.example/` + strings.Repeat("a", tasks.MaxPayloadBytes) + `"}`,
	`{"session_id":"s","comment_id":1,"comment_uri":"at://a/b/c","subject_uri":"at://a/b/c","subject_cid":"bafyreiabc123","text":"t","created_at":"0000-01-01T00:00:00+01:00"}`,
}

// kindIndex is the fuzz argument that picks a kind of tasks.All().
func kindOf(defs []tasks.Def, i uint8) tasks.Def { return defs[int(i)%len(defs)] }

// FuzzDecode: every declared kind's decoder, given any bytes, either
// refuses them with *tasks.FieldError(s) naming a field (or
// ErrPayloadTooLarge), or returns args that validate, encode within the
// size limit, decode back to the same value, and whose top-level JSON
// fields are exactly what the canonical payload holds (so what a strike
// matches on the raw payload is what the handler runs with).
func FuzzDecode(f *testing.F) {
	defs := tasks.All().Defs()
	for i, d := range defs {
		f.Add(uint8(i), []byte(validPayloads[d.Kind]))
		for _, p := range nastyPayloads {
			f.Add(uint8(i), []byte(p))
		}
	}
	f.Fuzz(func(t *testing.T, ki uint8, payload []byte) {
		def := kindOf(defs, ki)
		a, err := def.Decode(payload)
		if want := oracle(t, def, payload); (err == nil) != want {
			t.Fatalf("%s: Decode(%q) error %v; the reference decoder says accepted=%v", def.Kind, trim(payload), err, want)
		}
		if err != nil {
			checkRefusal(t, def, payload, err)
			return
		}
		checkAccepted(t, def, payload, a)
	})
}

// oracle is an independent reference for acceptance: encoding/json's own
// strict decode, validation, and the tokenizer's view of the top-level
// keys (each a declared name, spelled exactly, once).
func oracle(t *testing.T, def tasks.Def, payload []byte) bool {
	t.Helper()
	if len(payload) > tasks.MaxPayloadBytes {
		return false
	}
	if len(bytes.Trim(payload, " \t\r\n")) == 0 {
		payload = []byte("{}")
	}
	a := def.NewArgs()
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if dec.Decode(a) != nil {
		return false
	}
	if _, err := dec.Token(); err != io.EOF {
		return false // trailing data
	}
	if v, ok := a.(tasks.Validator); ok && v.Validate() != nil {
		return false
	}
	keys, _ := topLevelKeys(t, payload)
	fields := jsonNames(a)
	seen := map[string]bool{}
	for _, k := range keys {
		if !fields[k] || seen[k] {
			return false
		}
		seen[k] = true
	}
	return true
}

// checkRefusal: a refusal is invalid-input (never retried), and each of
// its leaves names a field: one of the kind's, "(body)", or the unknown
// one it found.
func checkRefusal(t *testing.T, def tasks.Def, payload []byte, err error) {
	t.Helper()
	if !tasks.IsInvalid(err) {
		t.Fatalf("%s: error %v (%T) is not a field error or ErrPayloadTooLarge", def.Kind, err, err)
	}
	if errors.Is(err, tasks.ErrPayloadTooLarge) {
		if len(payload) <= tasks.MaxPayloadBytes {
			t.Fatalf("%s: %d-byte payload refused as too large: %v", def.Kind, len(payload), err)
		}
		return
	}
	fields := jsonNames(def.NewArgs())
	// A well-formed JSON object is never refused as a whole: the error
	// names the member at fault.
	trimmed := bytes.Trim(payload, " \t\r\n")
	wellFormed := json.Valid(trimmed) && len(trimmed) > 0 && trimmed[0] == '{'
	for _, fe := range leaves(err) {
		if fe.Field == "" || fe.Reason == "" {
			t.Fatalf("%s: field error without field or reason: %#v", def.Kind, fe)
		}
		if len(fe.Field) > 64+len("…") {
			t.Fatalf("%s: field error names a %d-byte field: an error says why, it does not echo the payload", def.Kind, len(fe.Field))
		}
		if wellFormed && fe.Field == "(body)" {
			t.Fatalf("%s: well-formed object %q refused without naming a field: %v", def.Kind, trim(payload), err)
		}
		_, known := fields[fe.Field]
		if !known && fe.Field != "(body)" && !strings.HasPrefix(fe.Reason, "unknown field") {
			t.Fatalf("%s: error names %q, not a field of the kind: %v", def.Kind, fe.Field, err)
		}
	}
}

func checkAccepted(t *testing.T, def tasks.Def, payload []byte, a tasks.Args) {
	t.Helper()
	if a.Kind() != def.Kind {
		t.Fatalf("decoded %s as %s", def.Kind, a.Kind())
	}
	if v, ok := a.(tasks.Validator); ok {
		if err := v.Validate(); err != nil {
			t.Fatalf("%s: accepted args do not validate: %v", def.Kind, err)
		}
	}
	enc, err := tasks.Encode(a)
	if err != nil {
		t.Fatalf("%s: accepted payload does not encode: %v\npayload: %q", def.Kind, err, trim(payload))
	}
	a2, err := def.Decode(enc)
	if err != nil {
		t.Fatalf("%s: canonical payload %q is refused: %v", def.Kind, trim(enc), err)
	}
	if !sameArgs(a, a2) {
		t.Fatalf("%s: round trip changed the args:\n first  %+v\n second %+v", def.Kind, a, a2)
	}
	enc2, err := tasks.Encode(a2)
	if err != nil || !bytes.Equal(enc, enc2) {
		t.Fatalf("%s: canonical encoding is not stable: %q then %q (%v)", def.Kind, trim(enc), trim(enc2), err)
	}
	if tasks.UniqueKey(a) != tasks.UniqueKey(a2) {
		t.Fatalf("%s: unique key changed by the round trip: %q then %q", def.Kind, tasks.UniqueKey(a), tasks.UniqueKey(a2))
	}
	// The raw payload's top level holds only the kind's fields, each once,
	// spelled exactly: what a strike reads from the raw payload is what
	// the decoder used.
	keys, isObject := topLevelKeys(t, payload)
	fields := jsonNames(def.NewArgs())
	seen := map[string]bool{}
	for _, k := range keys {
		if _, ok := fields[k]; !ok {
			t.Fatalf("%s: accepted a payload with top-level key %q, which is not a field", def.Kind, k)
		}
		if seen[k] {
			t.Fatalf("%s: accepted a payload with key %q twice", def.Kind, k)
		}
		seen[k] = true
	}
	if !isObject && len(bytes.Trim(payload, " \t\r\n")) > 0 && string(bytes.Trim(payload, " \t\r\n")) != "null" {
		t.Fatalf("%s: accepted a payload that is not an object: %q", def.Kind, trim(payload))
	}
	if got, err := tasks.All().Decode(def.Kind, payload); err != nil || !sameArgs(got, a) {
		t.Fatalf("%s: Catalog.Decode disagrees with Def.Decode: %+v, %v", def.Kind, got, err)
	}
}

// FuzzRedact: Redact never panics, always returns JSON, keeps a JSON
// payload's non-sensitive values exactly (numbers included) and never
// shows a sensitive one.
func FuzzRedact(f *testing.F) {
	for _, p := range validPayloads {
		f.Add([]byte(p))
	}
	for _, p := range nastyPayloads {
		f.Add([]byte(p))
	}
	f.Add([]byte(`{"track_id":9007199254740993,"n":1e400,"x":-0.0}`))
	f.Add([]byte(`{"text":"secret words","nested":{"access_token":"t0k","list":[{"password":"p"}]}}`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		out := tasks.Redact(payload)
		if len(payload) == 0 {
			if len(out) != 0 {
				t.Fatalf("Redact(empty) = %q", out)
			}
			return
		}
		if !json.Valid(out) {
			t.Fatalf("Redact(%q) = %q, not JSON", trim(payload), trim(out))
		}
		if !json.Valid(payload) {
			return
		}
		want, err := decodeNumbers(payload)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeNumbers(out)
		if err != nil {
			t.Fatalf("Redact output %q: %v", trim(out), err)
		}
		if !reflect.DeepEqual(redactModel(want), got) {
			t.Fatalf("Redact(%q) = %q; want non-sensitive values kept exactly and sensitive ones replaced", trim(payload), trim(out))
		}
	})
}

// decodeNumbers decodes JSON keeping numbers as their text.
func decodeNumbers(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	err := dec.Decode(&v)
	return v, err
}

// redactModel is the reference for Redact, written independently: every
// value under a key that names a secret or user text is Redacted.
func redactModel(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, val := range t {
			if isSensitive(k) {
				out[k] = tasks.Redacted
			} else {
				out[k] = redactModel(val)
			}
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i := range t {
			out[i] = redactModel(t[i])
		}
		return out
	}
	return v
}

func isSensitive(k string) bool {
	k = strings.ToLower(k)
	if k == "text" || k == "authorization" || k == "cookie" {
		return true
	}
	for _, s := range []string{"token", "password", "secret", "jwt", "api_key", "apikey", "private"} {
		if strings.Contains(k, s) {
			return true
		}
	}
	return false
}

// leaves flattens a (joined) error into its *tasks.FieldErrors; any other
// leaf fails the caller's check through a nil entry's empty Field.
func leaves(err error) []*tasks.FieldError {
	if fe, ok := err.(*tasks.FieldError); ok {
		return []*tasks.FieldError{fe}
	}
	var out []*tasks.FieldError
	switch u := err.(type) {
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			out = append(out, leaves(e)...)
		}
	case interface{ Unwrap() error }:
		out = append(out, leaves(u.Unwrap())...)
	default:
		out = append(out, &tasks.FieldError{})
	}
	return out
}

// jsonNames returns the JSON field names of an args struct pointer.
func jsonNames(a tasks.Args) map[string]bool {
	out := map[string]bool{}
	t := reflect.TypeOf(a).Elem()
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		out[name] = true
	}
	return out
}

// topLevelKeys lists the keys of a JSON object in order, duplicates
// included; isObject is false for anything else.
func topLevelKeys(t *testing.T, payload []byte) (keys []string, isObject bool) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(payload))
	tok, err := dec.Token()
	if d, ok := tok.(json.Delim); err != nil || !ok || d != '{' {
		return nil, false
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("accepted payload %q does not tokenize: %v", trim(payload), err)
		}
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatalf("accepted payload %q does not tokenize: %v", trim(payload), err)
		}
	}
	return keys, true
}

// sameArgs compares two args values field by field; times compare by
// instant and offset (their JSON), not by *time.Location identity.
func sameArgs(a, b tasks.Args) bool {
	return equalValue(reflect.ValueOf(a), reflect.ValueOf(b))
}

func equalValue(a, b reflect.Value) bool {
	if a.Type() != b.Type() {
		return false
	}
	if a.Type() == reflect.TypeFor[time.Time]() {
		ta, tb := a.Interface().(time.Time), b.Interface().(time.Time)
		_, oa := ta.Zone()
		_, ob := tb.Zone()
		return ta.Equal(tb) && oa == ob
	}
	switch a.Kind() {
	case reflect.Pointer, reflect.Interface:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		return equalValue(a.Elem(), b.Elem())
	case reflect.Struct:
		for i := 0; i < a.NumField(); i++ {
			if !equalValue(a.Field(i), b.Field(i)) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a.Interface(), b.Interface())
}

func trim(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "…"
	}
	return string(b)
}
