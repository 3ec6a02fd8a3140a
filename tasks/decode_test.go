package tasks_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/plyr-fm/plyrtasks/tasks"
)

// TestValidPayloadsDecode: the fuzz seeds cover every declared kind and are
// accepted as they are.
func TestValidPayloadsDecode(t *testing.T) {
	c := tasks.All()
	for _, kind := range c.Kinds() {
		p, ok := validPayloads[kind]
		if !ok {
			t.Errorf("validPayloads has no payload of %s: add one (it seeds FuzzDecode)", kind)
			continue
		}
		if _, err := c.Decode(kind, []byte(p)); err != nil {
			t.Errorf("%s: %s refused: %v", kind, p, err)
		}
	}
	if len(validPayloads) != len(c.Kinds()) {
		t.Errorf("validPayloads has %d kinds, the catalog %d", len(validPayloads), len(c.Kinds()))
	}
}

// TestDecodeRefusals are the inputs the fuzzers found (or their seeds
// exposed), each refused with the field it names.
func TestDecodeRefusals(t *testing.T) {
	const scrobble = `"session_id":"s","track_id":1,"track_title":"a","artist_name":"b"`
	tests := []struct {
		name, kind, payload string
		field, reason       string // reason: a substring
	}{
		// FuzzDecode/3c2251ee8989cbe6: an empty key in a truncated object
		// gave a FieldError with an empty Field.
		{"empty key, truncated", "teal:scrobble", "{\"\":0 ", "(body)", "incomplete JSON"},
		{"empty key, complete", "copyright:scan", `{"":1}`, `""`, "unknown field"},
		// The newcomer run: export_id becomes the task ID and a storage path
		// segment; "../x" was accepted, then failed at run time and retried.
		{"export_id with a path", "export:media", `{"export_id":"../x","artist_did":"did:plc:a"}`, "export_id", "only letters, digits, - and _"},
		{"export_id with spaces", "export:media", `{"export_id":"a/b c?d","artist_did":"did:plc:a"}`, "export_id", "only letters, digits, - and _"},
		{"quoted key", "copyright:scan", `{"a\"b":1}`, `a"b`, "unknown field"},
		// FuzzDecode/5f6e1c078d9a3a85: \f is no JSON whitespace; "\v"
		// alone was taken for an empty payload.
		{"form feed", "pds:comment-create", "\f{}", "(body)", "invalid JSON"},
		{"vertical tab only", "copyright:sync-resolutions", "\v", "(body)", "invalid JSON"},
		{"non-breaking space only", "copyright:sync-resolutions", "\u00a0", "(body)", "invalid JSON"},
		// FuzzRegistryHandler's seed: a 60000-byte unknown key came back
		// whole in the error (an archived task's reason, a log line).
		{"long unknown key", "copyright:scan", `{"` + strings.Repeat("k", 60000) + `":1}`, strings.Repeat("k", 64) + "…", "unknown field"},
		{"long case-variant key", "export:media", `{"export_id":"x","artist_did":"did:plc:a","` + strings.Repeat("é", 40) + `":1}`, strings.Repeat("é", 32) + "…", "unknown field"},
		// A bad time named "(body)", not the field.
		{"bad played_at", "teal:scrobble", `{` + scrobble + `,"played_at":"yesterday"}`, "played_at", "RFC 3339"},
		{"played_at object", "teal:scrobble", `{` + scrobble + `,"played_at":{}}`, "played_at", "RFC 3339"},
		{"bad created_at", "pds:comment-update", `{"created_at":"2026-13-01T00:00:00Z"}`, "created_at", "RFC 3339"},
		// encoding/json matched keys case-insensitively and kept the last
		// of a repeated key: the raw payload (what strikes match) then
		// said something else than the args.
		{"case-variant keys", "copyright:scan", `{"TRACK_ID":42,"Audio_URL":"https://x.example/a"}`, "TRACK_ID", "unknown field"},
		{"case-variant key after a good one", "export:media", `{"export_id":"x","artist_did":"did:plc:a","Artist_DID":"did:plc:b"}`, "Artist_DID", "case-sensitive"},
		{"duplicate key", "copyright:scan", `{"track_id":1,"track_id":2,"audio_url":"https://x.example/a"}`, "track_id", "more than once"},
		// Accepted, then too large to encode: "<" is escaped six-fold.
		{"at-URI of escaped characters", "pds:like", `{"session_id":"s","like_id":1,"subject_uri":"at://did:plc:x/c/` + strings.Repeat("<", 12000) + `","subject_cid":"bafyreiabc123"}`, "subject_uri", "at most 8192"},
		{"at-URI with a character outside ATProto's", "pds:unlike", `{"session_id":"s","like_uri":"at://did:plc:x/c/a<b"}`, "like_uri", "at:// URI"},
		{"at-URI with a space", "pds:comment-delete", `{"session_id":"s","comment_uri":"at://did:plc:x/fm.plyr.comment/a b"}`, "comment_uri", "at:// URI"},
	}
	c := tasks.All()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := c.Decode(tt.kind, []byte(tt.payload))
			if err == nil {
				t.Fatalf("accepted as %+v", a)
			}
			var fe *tasks.FieldError
			if !errors.As(err, &fe) || fe.Field != tt.field || !strings.Contains(fe.Reason, tt.reason) {
				t.Fatalf("error %v; want a field error on %q containing %q", err, tt.field, tt.reason)
			}
		})
	}
}

// TestDecodeAcceptsATProtoURIs: the stricter at-URI check still takes what
// ATProto produces (DIDs with %-escapes and colons, TIDs, rkeys with ~).
func TestDecodeAcceptsATProtoURIs(t *testing.T) {
	for _, uri := range []string{
		"at://did:plc:abc123/fm.plyr.like/3k2la7xyz2c2a",
		"at://did:web:example.com%3A8080/app.bsky.feed.post/self",
		"at://alice.example.com/fm.plyr.list/a-b_c.d:e~f",
		"at://did:plc:x/c/" + strings.Repeat("k", 8192-len("at://did:plc:x/c/")),
	} {
		p := `{"session_id":"s","like_uri":"` + uri + `"}`
		if _, err := tasks.All().Decode("pds:unlike", []byte(p)); err != nil {
			t.Errorf("%.80s: %v", uri, err)
		}
	}
}

// TestRedactKeepsNumbers: numbers used to go through float64, so an ID
// past 2^53 showed as its neighbour and 1e400 as "not JSON".
func TestRedactKeepsNumbers(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{"track_id":9007199254740993,"n":1e400,"x":-0.0}`, `{"n":1e400,"track_id":9007199254740993,"x":-0.0}`},
		{`{"track_id":-9223372036854775808}`, `{"track_id":-9223372036854775808}`},
		{`{"text":"hello","id":99999999999999999999}`, `{"id":99999999999999999999,"text":"[redacted]"}`},
		{`{} x`, `"[redacted] (not JSON)"`},
	}
	for _, tt := range tests {
		if got := string(tasks.Redact([]byte(tt.in))); got != tt.want {
			t.Errorf("Redact(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

// BenchmarkDecode is the worker's per-task decode of a typical payload
// (the key check included).
func BenchmarkDecode(b *testing.B) {
	def, _ := tasks.All().Lookup("pds:comment-create")
	p := []byte(validPayloads["pds:comment-create"])
	b.ReportAllocs()
	for b.Loop() {
		if _, err := def.Decode(p); err != nil {
			b.Fatal(err)
		}
	}
}

// From the second newcomer run: POST /v1/strikes took
// {"type":"export:media","type":"pds:like"} and struck pds:like (json keeps
// the last), and {"Type":…} and {"Artist_DID":…} were read as the fields.
func TestDecodeObject(t *testing.T) {
	type strike struct {
		Type   string `json:"type"`
		Reason string `json:"reason"`
	}
	tests := []struct {
		name, body, field, reason string
	}{
		{"repeated key", `{"type":"export:media","type":"pds:like","reason":"r"}`, "type", "given more than once"},
		{"other case", `{"Type":"export:media","reason":"r"}`, "Type", "case-sensitive"},
		{"unknown key", `{"type":"a","by_whom":"x"}`, "by_whom", "unknown field"},
		{"trailing data", `{"type":"a"} {}`, "(body)", "after the JSON object"},
		{"wrong type", `{"type":1}`, "type", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v strike
			err := tasks.DecodeObject([]byte(tt.body), &v)
			var fe *tasks.FieldError
			if !errors.As(err, &fe) || fe.Field != tt.field || !strings.Contains(fe.Reason, tt.reason) {
				t.Fatalf("DecodeObject(%s) = %v, want a FieldError on %q (%q)", tt.body, err, tt.field, tt.reason)
			}
		})
	}
	var v strike
	if err := tasks.DecodeObject([]byte(`{"type":"export:media","reason":"r"}`), &v); err != nil || v.Type != "export:media" || v.Reason != "r" {
		t.Fatalf("valid body = %+v, %v", v, err)
	}
}
