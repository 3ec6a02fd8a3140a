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
