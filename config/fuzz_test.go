package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// FuzzByteSize: EXPORT_PART_SIZE's parser never panics, never yields a
// negative size, and what String prints parses back to the same size.
func FuzzByteSize(f *testing.F) {
	for _, s := range []string{
		"16MiB", "5MB", "1048576", "0", "0B", " 8 MiB ", "1.5MiB", "-1", "-0", "+5KiB", "5iB", "MiB", "",
		"9223372036854775807", "9223372036854775807B", "4611686018427387904B", "4611686018427387905B",
		"4294967296GiB", "4294967297GiB", "99999999999999999999KB", "NaN", "Inf", "0x10MiB", "1e3KB", "5\x00MiB", "5\xffMiB",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var b ByteSize
		if err := b.UnmarshalText([]byte(s)); err != nil {
			if err.Error() == "" {
				t.Fatalf("%q: empty error", s)
			}
			return
		}
		if b < 0 {
			t.Fatalf("%q parsed to a negative size %d", s, b)
		}
		var back ByteSize
		if err := back.UnmarshalText([]byte(b.String())); err != nil || back != b {
			t.Fatalf("%q = %d prints as %q, which parses to %d (%v)", s, b, b.String(), back, err)
		}
	})
}

// parsedVars are the variables whose values are parsed into a type
// (durations, sizes, numbers, booleans): the custom and library parsers
// FuzzLoadEnv feeds.
func parsedVars() []envVar {
	var out []envVar
	for _, v := range describe(reflect.TypeOf(Config{})) {
		if v.Type.Kind() != reflect.String {
			out = append(out, v)
		}
	}
	return out
}

// FuzzLoadEnv: one parsed variable set to any value never panics LoadEnv;
// a refusal names that variable (and never echoes a secret's value); an
// accepted value is what Redacted prints, which loads back to the same
// configuration.
func FuzzLoadEnv(f *testing.F) {
	vars := parsedVars()
	for i, v := range vars {
		for _, s := range []string{v.Default, "0", "-1s", "1h", "500ms", "1.5s", "9223372036854775807", "99999999999999999999",
			"NaN", "1e3", "true", "TRUE", "yes", "", " 1s ", "16MiB", "1\x00s", "\xff", "2562047h47m16.854775808s"} {
			f.Add(uint8(i), s)
		}
	}
	f.Fuzz(func(t *testing.T, vi uint8, value string) {
		v := vars[int(vi)%len(vars)]
		cfg, err := LoadEnv(map[string]string{v.Key: value})
		if err != nil {
			msg := err.Error()
			if !strings.Contains(msg, v.Key) {
				t.Fatalf("%s=%q: error does not name the variable: %v", v.Key, value, err)
			}
			if v.secret() && len(value) >= 4 && strings.Contains(msg, value) {
				t.Fatalf("%s is secret but its value appears in the error: %v", v.Key, err)
			}
			return
		}
		if v.secret() {
			return // shown as set/unset
		}
		shown := cfg.Redacted()[v.Key]
		env := map[string]string{v.Key: shown}
		if shown == "unset" {
			env = nil
		}
		again, err := LoadEnv(env)
		if err != nil {
			t.Fatalf("%s=%q loads, is shown as %q, which does not: %v", v.Key, value, shown, err)
		}
		got := reflect.ValueOf(*cfg).FieldByIndex(v.Index).Interface()
		want := reflect.ValueOf(*again).FieldByIndex(v.Index).Interface()
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s=%q loads as %v, shown as %q, which loads as %v", v.Key, value, got, shown, want)
		}
		// 0 is accepted where it means "the default" (ATProto's durations);
		// a negative duration never is.
		if d, ok := got.(time.Duration); ok && d < 0 {
			t.Fatalf("%s=%q accepted a negative duration %v", v.Key, value, d)
		}
	})
}

// TestRedactedListsInTheirOwnSyntax: FuzzLoadEnv's seeds: a list variable
// printed as Go's "[a b]" (and an empty one as "[]", not "unset"), which
// plyrtasks config shows and which cannot be set back.
func TestRedactedListsInTheirOwnSyntax(t *testing.T) {
	tests := []struct{ value, want string }{
		{"audio.plyr.fm,*.r2.dev", "audio.plyr.fm,*.r2.dev"},
		{"0", "0"},
		{"", "unset"},
	}
	for _, tt := range tests {
		cfg, err := LoadEnv(map[string]string{"AUDIO_URL_ALLOWED_HOSTS": tt.value})
		if err != nil {
			t.Fatalf("%q: %v", tt.value, err)
		}
		if got := cfg.Redacted()["AUDIO_URL_ALLOWED_HOSTS"]; got != tt.want {
			t.Errorf("AUDIO_URL_ALLOWED_HOSTS=%q shown as %q, want %q", tt.value, got, tt.want)
		}
	}
}
