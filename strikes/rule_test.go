package strikes_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/plyr-fm/plyrtasks/strikes"
	"github.com/plyr-fm/plyrtasks/tasks"
)

func TestParseRuleAndKey(t *testing.T) {
	tests := []struct {
		kind, arg string
		want      strikes.Rule
		key       string
	}{
		{"export:media", "", strikes.Rule{Kind: "export:media"}, "export:media"},
		{"export:media", "artist_did=did:plc:abc", strikes.Rule{Kind: "export:media", Field: "artist_did", Value: "did:plc:abc"}, "export:media|artist_did=did:plc:abc"},
		// The value may hold = and |: only the first = splits.
		{"pds:like", "subject_uri=at://x/y?a=b|c", strikes.Rule{Kind: "pds:like", Field: "subject_uri", Value: "at://x/y?a=b|c"}, "pds:like|subject_uri=at://x/y?a=b|c"},
	}
	for _, tt := range tests {
		r, err := strikes.ParseRule(tt.kind, tt.arg)
		if err != nil {
			t.Fatalf("ParseRule(%q, %q): %v", tt.kind, tt.arg, err)
		}
		if r != tt.want || r.Key() != tt.key || r.Arg() != tt.arg {
			t.Errorf("ParseRule(%q, %q) = %+v key %q arg %q; want %+v key %q", tt.kind, tt.arg, r, r.Key(), r.Arg(), tt.want, tt.key)
		}
		back, err := strikes.ParseKey(r.Key())
		if err != nil || back != r {
			t.Errorf("ParseKey(%q) = %+v, %v; want %+v", r.Key(), back, err, r)
		}
	}
}

func TestParseRuleRejects(t *testing.T) {
	tests := []struct {
		kind, arg string
		field     string
	}{
		{"", "", "type"},
		{"export media", "", "type"},
		{"export|media", "", "type"},
		{strings.Repeat("k", strikes.MaxKindLen+1), "", "type"},
		{"export:media", "artist_did", "arg"},
		{"export:media", "=did:plc:x", "arg"},
		{"export:media", "artist_did=", "arg"},
		{"export:media", "artist-did=x", "arg"},
		{"export:media", "meta.artist_did=x", "arg"},
		{"export:media", "artist_did=a\nb", "arg"},
		{"export:media", "artist_did=" + strings.Repeat("v", strikes.MaxValueLen+1), "arg"},
	}
	for _, tt := range tests {
		_, err := strikes.ParseRule(tt.kind, tt.arg)
		var fe *tasks.FieldError
		if !errors.As(err, &fe) || fe.Field != tt.field {
			t.Errorf("ParseRule(%q, %q) = %v, want a FieldError on %q", tt.kind, tt.arg, err, tt.field)
		}
	}
	if _, err := strikes.ParseKey("export:media|"); err == nil {
		t.Error("ParseKey accepted a key ending in |")
	}
}

func TestValidateFor(t *testing.T) {
	catalog := tasks.All()
	tests := []struct {
		kind, arg string
		field     string // "" = valid
		reason    string // part of the reason
	}{
		{"export:media", "", "", ""},
		{"export:media", "artist_did=did:plc:abc", "", ""},
		{"copyright:scan", "track_id=42", "", ""},
		{"teal:scrobble", "duration=180", "", ""}, // a *int field
		{"export:nope", "", "type", `unknown task type "export:nope"`},
		{"export:media", "artist=did:plc:abc", "arg", `has no field "artist" (fields: artist_did, export_id)`},
		{"copyright:scan", "track_id=abc", "arg", `"abc" never matches`},
		{"copyright:scan", "track_id=4.2", "arg", "never matches"},
	}
	for _, tt := range tests {
		r, err := strikes.ParseRule(tt.kind, tt.arg)
		if err != nil {
			t.Fatal(err)
		}
		err = r.ValidateFor(catalog)
		if tt.field == "" {
			if err != nil {
				t.Errorf("%s: %v", r, err)
			}
			continue
		}
		var fe *tasks.FieldError
		if !errors.As(err, &fe) || fe.Field != tt.field || !strings.Contains(fe.Reason, tt.reason) {
			t.Errorf("%s: err = %v, want a FieldError on %q containing %q", r, err, tt.field, tt.reason)
		}
	}
}
