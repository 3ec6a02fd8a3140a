package strikes

import (
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/plyr-fm/plyrtasks/tasks"
)

var ruleSeeds = []struct{ kind, arg string }{
	{"export:media", ""},
	{"export:media", "artist_did=did:plc:abc"},
	{"pds:like", "subject_uri=at://x/y?a=b|c"},
	{"copyright:scan", "track_id=42"},
	{"copyright:scan", "track_id=+42"},
	{"copyright:scan", "track_id=042"},
	{"copyright:scan", "track_id=-0"},
	{"copyright:scan", "track_id=99999999999999999999"},
	{"copyright:scan", "track_id=NaN"},
	{"teal:scrobble", "duration=1e3"},
	{"teal:scrobble", "played_at=yesterday"},
	{"teal:scrobble", "played_at=2026-01-02T15:04:05Z"},
	{"teal:scrobble", "played_at=2026-01-02T15:04:05+00:00"},
	{"pds:comment-update", "created_at=2026-01-02T15:04:05.000Z"},
	{"export:media", "artist_did=\xff\xfe"},
	{"export:media", "artist_did=a\u2028b"},
	{"export:media", "=x"},
	{"", "a=b"},
	{"export media", ""},
	{"a|b", "c=d"},
	{"export:media", "artist_did==="},
	{"export:media", "ARTIST_DID=did:plc:abc"},
}

// FuzzParseRule: ParseRule never panics; it refuses with field errors on
// "type" or "arg", or returns a rule whose key parses back to it. A rule
// ValidateFor accepts can match a canonical payload: its value is how
// plyrtasks writes that field (a typo-like "track_id=042" would be a
// strike that never matches anything).
func FuzzParseRule(f *testing.F) {
	for _, s := range ruleSeeds {
		f.Add(s.kind, s.arg)
	}
	catalog := tasks.All()
	f.Fuzz(func(t *testing.T, kind, arg string) {
		r, err := ParseRule(kind, arg)
		if err != nil {
			checkFields(t, err, "type", "arg")
			return
		}
		if r.Kind != kind || r.Arg() != arg {
			t.Fatalf("ParseRule(%q, %q) = %+v", kind, arg, r)
		}
		back, err := ParseKey(r.Key())
		if err != nil || back != r {
			t.Fatalf("ParseKey(%q) = %+v, %v; want %+v", r.Key(), back, err, r)
		}
		if err := r.ValidateFor(catalog); err != nil {
			checkFields(t, err, "type", "arg")
			return
		}
		if r.Field == "" {
			return
		}
		def, _ := catalog.Lookup(r.Kind)
		typ := jsonFields(def.NewArgs())[r.Field]
		canonical, ok := canonicalText(typ, r.Value)
		if !ok || canonical != r.Value {
			t.Fatalf("ValidateFor accepted %s, but plyrtasks writes %s.%s as %q: the strike can never match", r, r.Kind, r.Field, canonical)
		}
	})
}

// canonicalText is how a canonical payload spells value v of a field of
// type typ, as scalar reads it (ok false when v is no such value).
func canonicalText(typ reflect.Type, v string) (string, bool) {
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	var x any
	switch {
	case typ == reflect.TypeFor[time.Time]():
		tm, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return "", false
		}
		x = tm
	case typ.Kind() == reflect.String:
		x = v
	case typ.Kind() >= reflect.Int && typ.Kind() <= reflect.Int64:
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return "", false
		}
		x = n
	default:
		return "", false
	}
	b, err := json.Marshal(x)
	if err != nil {
		return "", false
	}
	return scalar(b), true
}

// FuzzParseKey: any stored key parses without panicking, and a key that
// parses is exactly its rule's Key (so List shows what Restore removes).
func FuzzParseKey(f *testing.F) {
	for _, s := range ruleSeeds {
		r := Rule{Kind: s.kind}
		r.Field, r.Value, _ = strings.Cut(s.arg, "=")
		f.Add(r.Key())
	}
	f.Add("export:media|")
	f.Add("|")
	f.Add("||=")
	f.Fuzz(func(t *testing.T, key string) {
		r, err := ParseKey(key)
		if err != nil {
			checkFields(t, err, "type", "arg")
			return
		}
		if r.Key() != key {
			t.Fatalf("ParseKey(%q) = %+v, whose key is %q", key, r, r.Key())
		}
	})
}

// FuzzMatchAgreesWithDecode: for a payload the worker accepts, a strike on
// a top-level field matches the raw payload (what the worker's strike
// middleware sees) exactly when it matches the canonical payload (what the
// handler runs with), whichever of the two the strike's value was read
// from. Time fields are left out: a strike compares text, and one instant
// has many RFC 3339 spellings.
func FuzzMatchAgreesWithDecode(f *testing.F) {
	catalog := tasks.All()
	kinds := catalog.Kinds()
	seeds := []string{
		`{"track_id":42,"audio_url":"https://cdn.example/a.mp3"}`,
		`{"export_id":"e","artist_did":"did:plc:bad"}`,
		`{"session_id":"s","comment_id":1,"subject_uri":"at://a/b/c","subject_cid":"bafyreiabc123","text":"t","timestamp_ms":-0}`,
		`{"session_id":"s","track_id":1,"track_title":"a","artist_name":"b","duration":0}`,
		`{"session_id":"s","track_id":1,"track_title":"a","artist_name":"b","duration":-0}`,
		`{"export_id":"e","artist_did":"did:plc:b\u0061d"}`,
		`{"export_id":"e","Artist_DID":"did:plc:bad","artist_did":"did:plc:ok"}`,
		`{"export_id":"e","artist_did":"did:plc:bad","artist_did":"did:plc:ok"}`,
		"{\"export_id\":\"\xff\",\"artist_did\":\"did:plc:\xfe\"}",
	}
	for i := range kinds {
		for _, s := range seeds {
			f.Add(uint8(i), []byte(s))
		}
	}
	f.Fuzz(func(t *testing.T, ki uint8, payload []byte) {
		kind := kinds[int(ki)%len(kinds)]
		def, _ := catalog.Lookup(kind)
		args, err := def.Decode(payload)
		if err != nil {
			// Refused payloads are archived as invalid; matching them
			// must only not panic.
			rules{}.match(kind, payload)
			return
		}
		canonical, err := tasks.Encode(args)
		if err != nil {
			t.Fatalf("accepted payload does not encode: %v", err)
		}
		types := jsonFields(def.NewArgs())
		var raw, canon map[string]json.RawMessage
		_ = json.Unmarshal(payload, &raw)
		if err := json.Unmarshal(canonical, &canon); err != nil {
			t.Fatal(err)
		}
		for field, typ := range types {
			if typ == reflect.TypeFor[time.Time]() || typ == reflect.TypeFor[*time.Time]() {
				continue
			}
			for _, src := range []map[string]json.RawMessage{raw, canon} {
				v, ok := src[field]
				if !ok || scalar(v) == "" {
					continue
				}
				r := Rule{Kind: kind, Field: field, Value: scalar(v)}
				idx := index([]Strike{{Rule: r, Key: r.Key(), Reason: "fuzz"}})
				_, onRaw := idx.match(kind, payload)
				_, onCanon := idx.match(kind, canonical)
				if onRaw != onCanon {
					t.Fatalf("strike %s matches the raw payload: %v, the canonical one: %v\nraw %q\ncanonical %q", r, onRaw, onCanon, payload, canonical)
				}
			}
		}
	})
}

// checkFields fails unless every leaf of err is a *tasks.FieldError on one
// of fields.
func checkFields(t *testing.T, err error, fields ...string) {
	t.Helper()
	var walk func(error)
	walk = func(e error) {
		if fe, ok := e.(*tasks.FieldError); ok {
			for _, f := range fields {
				if fe.Field == f && fe.Reason != "" {
					return
				}
			}
			t.Fatalf("field error %v names %q, want one of %v", fe, fe.Field, fields)
		}
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		t.Fatalf("error %v (%T) is not a *tasks.FieldError", e, e)
	}
	if err == nil || errors.Is(err, nil) {
		return
	}
	walk(err)
}

// TestValidateForRefusesRulesThatNeverMatch: FuzzParseRule's seeds that
// ValidateFor accepted although no payload plyrtasks writes spells the
// value that way.
func TestValidateForRefusesRulesThatNeverMatch(t *testing.T) {
	tests := []struct{ kind, arg, reason string }{
		{"copyright:scan", "track_id=+42", `payloads spell it "42"`},
		{"copyright:scan", "track_id=042", `payloads spell it "42"`},
		{"copyright:scan", "track_id=-0", `payloads spell it "0"`},
		{"teal:scrobble", "played_at=yesterday", `is a time (RFC 3339): "yesterday" never matches`},
		{"teal:scrobble", "played_at=2026-01-02T15:04:05+00:00", `payloads spell it "2026-01-02T15:04:05Z"`},
		{"pds:comment-update", "created_at=2026-01-02T15:04:05.000Z", `payloads spell it "2026-01-02T15:04:05Z"`},
		{"export:media", "artist_did=\xff\xfe", "value must be UTF-8"},
	}
	for _, tt := range tests {
		r := Rule{Kind: tt.kind}
		r.Field, r.Value, _ = strings.Cut(tt.arg, "=")
		err := r.ValidateFor(tasks.All())
		var fe *tasks.FieldError
		if !errors.As(err, &fe) || fe.Field != "arg" || !strings.Contains(fe.Reason, tt.reason) {
			t.Errorf("%s: err = %v, want a FieldError on arg containing %q", r, err, tt.reason)
		}
	}
	// Their canonical spellings are fine.
	for _, arg := range []string{"track_id=42", "track_id=-7", "played_at=2026-01-02T15:04:05Z", "played_at=2026-01-02T15:04:05.5+01:00"} {
		kind := "copyright:scan"
		if strings.HasPrefix(arg, "played_at") {
			kind = "teal:scrobble"
		}
		r, err := ParseRule(kind, arg)
		if err == nil {
			err = r.ValidateFor(tasks.All())
		}
		if err != nil {
			t.Errorf("%s %s: %v", kind, arg, err)
		}
	}
}

// TestMatchNegativeZero: FuzzMatchAgreesWithDecode's seed: the worker
// decodes "timestamp_ms":-0 as 0 and the canonical payload says 0, but the
// strike on the raw payload compared the text "-0".
func TestMatchNegativeZero(t *testing.T) {
	idx := index([]Strike{strikeOf(t, "pds:comment-create", "timestamp_ms=0", "zero")})
	for _, p := range []string{`{"timestamp_ms":-0}`, `{"timestamp_ms":0}`, `{"timestamp_ms": -0 }`} {
		if _, ok := idx.match("pds:comment-create", []byte(p)); !ok {
			t.Errorf("%s: strike timestamp_ms=0 does not match", p)
		}
	}
	if _, ok := idx.match("pds:comment-create", []byte(`{"timestamp_ms":-1}`)); ok {
		t.Error("timestamp_ms=0 matches -1")
	}
}

// TestBareEqualsIsNotAWholeTypeRule: FuzzParseRule/6cba0239f9047fc9 and
// FuzzParseKey/6cf9d6dc01dd4317: an argument "=" made a rule on the whole
// type, so a typo struck every task of the kind.
func TestBareEqualsIsNotAWholeTypeRule(t *testing.T) {
	if r, err := ParseRule("0", "="); err == nil {
		t.Errorf(`ParseRule("0", "=") = %+v, want an error`, r)
	} else {
		checkFields(t, err, "arg")
	}
	if r, err := ParseRule("export:media", "="); err == nil {
		t.Errorf(`ParseRule("export:media", "=") = %+v, want an error`, r)
	}
	if r, err := ParseKey("0|="); err == nil {
		t.Errorf(`ParseKey("0|=") = %+v, want an error`, r)
	}
}

// TestMatchAbsentField: FuzzMatchAgreesWithDecode/536e5a4c2214358f: a
// payload without timestamp_ms runs with 0 (the canonical payload says
// so), but a strike on timestamp_ms=0 matched only a payload that spelled
// it out.
func TestMatchAbsentField(t *testing.T) {
	idx := index([]Strike{
		strikeOf(t, "pds:comment-create", "timestamp_ms=0", "zero"),
		strikeOf(t, "teal:scrobble", "duration=0", "pointer: absent is not 0"),
	})
	tests := []struct {
		kind, payload string
		want          bool
	}{
		{"pds:comment-create", `{"session_id":"0","comment_id":1,"subject_uri":"at://0/0/0","subject_cid":"000000000","text":"0"}`, true},
		{"pds:comment-create", `{"timestamp_ms":null}`, true},
		{"pds:comment-create", `{"timestamp_ms":5}`, false},
		{"pds:comment-create", `[]`, false},
		{"teal:scrobble", `{"track_id":1}`, false},
		{"teal:scrobble", `{"duration":null}`, false},
		{"teal:scrobble", `{"duration":0}`, true},
	}
	for _, tt := range tests {
		if _, got := idx.match(tt.kind, []byte(tt.payload)); got != tt.want {
			t.Errorf("%s %s: match = %v, want %v", tt.kind, tt.payload, got, tt.want)
		}
	}
}
