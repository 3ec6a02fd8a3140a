package logcheck_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/lmittmann/tint"

	"github.com/plyr-fm/plyrtasks/internal/logcheck"
)

// recorder is a testing.TB that records failures instead of failing.
type recorder struct {
	testing.TB
	errors []string
	fatal  string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}
func (r *recorder) Fatal(args ...any) { r.fatal = fmt.Sprint(args...) }

func TestFindsEachEncoding(t *testing.T) {
	const token = "tok_<live>&9f8e7d6c5b4a"
	const comment = "my \"private\" comment text"
	const binary = "??>>??>>-secret" // its base64 forms differ (+ and / against - and _)
	tests := []struct {
		name     string
		line     string
		encoding string
		secret   int
	}{
		{"raw", "level=INFO msg=login token=" + token, "raw", 0},
		{"json escaped", `{"msg":"x","text":"my \"private\" comment text"}`, "json", 1},
		{"go json escapes < > &", `{"authorization":"tok_\u003clive\u003e\u00269f8e7d6c5b4a"}`, "json", 0},
		{"query", "GET /v1/x?token=" + url.QueryEscape(token), "query", 0},
		{"path", "GET /v1/" + url.PathEscape(comment), "path", 1},
		{"base64", "auth=" + base64.StdEncoding.EncodeToString([]byte(token)), "base64", 0},
		{"base64", "auth=" + base64.StdEncoding.EncodeToString([]byte(binary)), "base64", 2},
		{"base64url", "auth=" + base64.RawURLEncoding.EncodeToString([]byte(binary)), "base64url", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs := []byte("first line\nsecond line\n" + tt.line + "\nlast line\n")
			leaks, err := logcheck.Find(logs, token, comment, binary)
			if err != nil {
				t.Fatal(err)
			}
			if len(leaks) != 1 {
				t.Fatalf("leaks = %v, want 1", leaks)
			}
			if l := leaks[0]; l.Encoding != tt.encoding || l.Line != 3 || l.Secret != tt.secret {
				t.Errorf("leak = %+v, want %s on line 3 of secret %d", l, tt.encoding, tt.secret)
			}
		})
	}
}

func TestAssertNoSecrets(t *testing.T) {
	const secret = "correct-horse-battery-staple"
	t.Run("clean logs pass", func(t *testing.T) {
		r := &recorder{TB: t}
		logcheck.AssertNoSecrets(r, []byte("level=INFO msg=\"task completed\" kind=pds:like\n"), secret)
		if len(r.errors) != 0 || r.fatal != "" {
			t.Errorf("failed on clean logs: %v %q", r.errors, r.fatal)
		}
	})
	t.Run("a leak fails without printing the secret", func(t *testing.T) {
		r := &recorder{TB: t}
		logcheck.AssertNoSecrets(r, []byte("ok\npassword="+secret+"\nagain "+secret+"\n"), "unused-secret-value", secret)
		if len(r.errors) != 2 {
			t.Fatalf("errors = %q, want 2 (one per occurrence)", r.errors)
		}
		if !strings.Contains(r.errors[0], "secret #2 (raw) on line 2") || !strings.Contains(r.errors[1], "line 3") {
			t.Errorf("errors = %q", r.errors)
		}
		for _, e := range r.errors {
			if strings.Contains(e, secret) {
				t.Errorf("the failure message prints the secret: %q", e)
			}
		}
	})
	for _, tc := range []struct {
		name    string
		logs    string
		secrets []string
	}{
		{"empty logs prove nothing", "  \n", []string{secret}},
		{"no secrets", "x", nil},
		{"empty secret", "x", []string{""}},
		{"short secret", "x", []string{"abc"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &recorder{TB: t}
			logcheck.AssertNoSecrets(r, []byte(tc.logs), tc.secrets...)
			if r.fatal == "" {
				t.Error("did not fail")
			}
		})
	}
}

func TestBufferWithSlogConcurrently(t *testing.T) {
	var buf logcheck.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 50 {
				logger.Info("task completed", "worker", i, "n", j)
			}
		}()
	}
	wg.Wait()
	if n := bytes.Count(buf.Bytes(), []byte("\n")); n != 400 {
		t.Errorf("%d lines, want 400", n)
	}
	logcheck.AssertNoSecrets(t, buf.Bytes(), "a-secret-never-logged")
}

// TestFindsWhatSlogWrites: slog's handlers escape a value the way neither
// the raw secret nor json.Marshal's form (which also escapes & < >) reads:
// the JSON handler escapes quotes but not &, the text handlers Go-quote
// (\a where JSON has \u0007). The comment is the e2e test's comment text
// that went unnoticed this way.
func TestFindsWhatSlogWrites(t *testing.T) {
	const comment = `cmt1f2e3d meet me at "the old mill" & bring the tape — ünder the bridge`
	const tabbed = "pass\tword <with> & tab"
	const bell = "ring the \a bell & \"run\""
	jsonH := func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) }
	textH := func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) }
	tintH := func(b *bytes.Buffer) slog.Handler { return tint.NewHandler(b, &tint.Options{NoColor: true}) }
	tests := []struct {
		name     string
		handler  func(*bytes.Buffer) slog.Handler
		secret   string
		encoding string // "": any (the Go-quoted form equals the JSON one)
	}{
		{"slog JSON, quote and &", jsonH, comment, "json"},
		{"slog JSON, tab and < > &", jsonH, tabbed, "json"},
		{"slog JSON, bell", jsonH, bell, "json"},
		{"slog text, quote and &", textH, comment, ""},
		{"slog text, bell", textH, bell, "quoted"},
		{"tint, quote and &", tintH, comment, ""},
		{"tint, bell", tintH, bell, "quoted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			slog.New(tt.handler(&buf)).Info("comment not written", "text", tt.secret)
			if bytes.Contains(buf.Bytes(), []byte(tt.secret)) {
				t.Fatalf("the handler wrote the secret raw; this case tests an escaped form: %s", buf.Bytes())
			}
			leaks, err := logcheck.Find(buf.Bytes(), tt.secret)
			if err != nil {
				t.Fatal(err)
			}
			if len(leaks) != 1 || leaks[0].Line != 1 || (tt.encoding != "" && leaks[0].Encoding != tt.encoding) {
				t.Errorf("leaks = %v in %q, want one %s leak on line 1", leaks, buf.Bytes(), tt.encoding)
			}
		})
	}
}
