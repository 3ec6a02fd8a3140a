package strikes

import (
	"testing"
)

func mustRule(t testing.TB, kind, arg string) Rule {
	t.Helper()
	r, err := ParseRule(kind, arg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func strikeOf(t testing.TB, kind, arg, reason string) Strike {
	r := mustRule(t, kind, arg)
	return Strike{Rule: r, Key: r.Key(), Reason: reason}
}

func TestMatch(t *testing.T) {
	idx := index([]Strike{
		strikeOf(t, "pds:like", "", "like spam"),
		strikeOf(t, "export:media", "artist_did=did:plc:bad", "artist under review"),
		strikeOf(t, "export:media", "export_id=exp-9", "export 9 loops"),
		strikeOf(t, "copyright:scan", "track_id=42", "track 42 crashes the scanner"),
		strikeOf(t, "pds:comment-create", "text=hello", "never matches a string with other case"),
		strikeOf(t, "teal:scrobble", "duration=true", "bool-looking value"),
	})
	tests := []struct {
		name    string
		kind    string
		payload string
		want    string // the matching strike's key, "" for none
	}{
		{"whole type", "pds:like", `{"like_id":1}`, "pds:like"},
		{"whole type, payload not even JSON", "pds:like", `garbage`, "pds:like"},
		{"arg match", "export:media", `{"export_id":"e1","artist_did":"did:plc:bad"}`, "export:media|artist_did=did:plc:bad"},
		{"arg on another field", "export:media", `{"export_id":"exp-9","artist_did":"did:plc:ok"}`, "export:media|export_id=exp-9"},
		{"arg other value", "export:media", `{"export_id":"e1","artist_did":"did:plc:badder"}`, ""},
		{"arg is a prefix only", "export:media", `{"export_id":"e1","artist_did":"did:plc:ba"}`, ""},
		{"arg escaped in JSON", "export:media", `{"artist_did":"did:plc:b\u0061d"}`, "export:media|artist_did=did:plc:bad"},
		{"arg case differs", "pds:comment-create", `{"text":"Hello"}`, ""},
		{"arg case same", "pds:comment-create", `{"text":"hello"}`, "pds:comment-create|text=hello"},
		{"number", "copyright:scan", `{"track_id":42,"audio_url":"https://x"}`, "copyright:scan|track_id=42"},
		{"number with spaces", "copyright:scan", `{"track_id": 42 }`, "copyright:scan|track_id=42"},
		{"other number", "copyright:scan", `{"track_id":421}`, ""},
		{"number as a string matches its text", "copyright:scan", `{"track_id":"42"}`, "copyright:scan|track_id=42"},
		{"bool", "teal:scrobble", `{"duration":true}`, "teal:scrobble|duration=true"},
		{"nested field is not top-level", "export:media", `{"meta":{"artist_did":"did:plc:bad"}}`, ""},
		{"null", "export:media", `{"artist_did":null}`, ""},
		{"object", "export:media", `{"artist_did":{"x":"did:plc:bad"}}`, ""},
		{"malformed payload", "export:media", `{"artist_did":"did:plc:bad"`, ""},
		{"empty payload", "export:media", ``, ""},
		{"kind without strikes", "atproto:sync", `{"did":"did:plc:bad"}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, ok := idx.match(tt.kind, []byte(tt.payload))
			if ok != (tt.want != "") || st.Key != tt.want {
				t.Errorf("match = %q, %v; want %q", st.Key, ok, tt.want)
			}
		})
	}
}

// BenchmarkMatch measures the hot path: every task a worker runs and every
// enqueue pays it.
func BenchmarkMatch(b *testing.B) {
	idx := index([]Strike{
		strikeOf(b, "pds:like", "", "r"),
		strikeOf(b, "export:media", "artist_did=did:plc:bad", "r"),
	})
	payload := []byte(`{"export_id":"e1","artist_did":"did:plc:somebodyelse"}`)
	b.Run("kind without strikes", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := idx.match("copyright:scan", payload); ok {
				b.Fatal("matched")
			}
		}
	})
	b.Run("whole-type strike", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := idx.match("pds:like", payload); !ok {
				b.Fatal("no match")
			}
		}
	})
	b.Run("arg strike, no match", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := idx.match("export:media", payload); ok {
				b.Fatal("matched")
			}
		}
	})
}
