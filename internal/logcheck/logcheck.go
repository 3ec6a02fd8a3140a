// Package logcheck is the test side of "no secret in any log line": it
// searches captured logs for the secrets a test used (tokens, passwords,
// comment texts), raw and in the encodings a logger or an HTTP library
// would write them in (JSON string escaping, URL query and path escaping,
// base64), and fails the test naming the line without printing the
// secret.
//
//	var logs logcheck.Buffer
//	logger := slog.New(slog.NewJSONHandler(&logs, nil))
//	… run the system with logger, using the secrets …
//	logcheck.AssertNoSecrets(t, logs.Bytes(), apiToken, dashboardPassword, commentText)
package logcheck

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"sync"
	"testing"
)

// MinSecretLen is the shortest secret AssertNoSecrets accepts: a shorter
// one would match ordinary log text and prove nothing. Tests use long,
// distinctive secrets.
const MinSecretLen = 8

// Leak is one occurrence of a secret in the logs.
type Leak struct {
	// Secret is the index of the secret in the list given.
	Secret int
	// Encoding is how it was written: raw, json, quoted (Go-quoted, as
	// text log handlers write it), query, path, base64, base64url.
	Encoding string
	// Line is the 1-based line number, Offset the byte offset in the logs.
	Line   int
	Offset int
}

func (l Leak) String() string {
	return fmt.Sprintf("secret #%d (%s) on line %d", l.Secret+1, l.Encoding, l.Line)
}

// encodings returns the forms of s to look for, by name. Forms equal to
// an earlier one are dropped.
func encodings(s string) [][2]string {
	j, _ := json.Marshal(s)
	// slog's JSONHandler escapes like encoding/json without its HTML
	// escaping (& < > stay as they are); a secret with a quote and an & is
	// in neither the raw nor the json.Marshal form.
	var plain bytes.Buffer
	enc := json.NewEncoder(&plain)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	pj := bytes.TrimSuffix(plain.Bytes(), []byte("\n"))
	// slog's TextHandler and tint quote values with strconv.Quote.
	q := strconv.Quote(s)
	forms := [][2]string{
		{"raw", s},
		{"json", string(j[1 : len(j)-1])},
		{"json", string(pj[1 : len(pj)-1])},
		{"quoted", q[1 : len(q)-1]},
		{"query", url.QueryEscape(s)},
		{"path", url.PathEscape(s)},
		{"base64", base64.StdEncoding.EncodeToString([]byte(s))},
		{"base64", base64.RawStdEncoding.EncodeToString([]byte(s))},
		{"base64url", base64.URLEncoding.EncodeToString([]byte(s))},
		{"base64url", base64.RawURLEncoding.EncodeToString([]byte(s))},
	}
	var out [][2]string
	seen := map[string]bool{}
	for _, f := range forms {
		if !seen[f[1]] {
			seen[f[1]] = true
			out = append(out, f)
		}
	}
	return out
}

// Find returns every occurrence of every secret in logs, in any of the
// encodings, ordered by secret then offset. It returns an error for a
// secret shorter than MinSecretLen.
func Find(logs []byte, secrets ...string) ([]Leak, error) {
	var leaks []Leak
	for i, s := range secrets {
		if len(s) < MinSecretLen {
			return nil, fmt.Errorf("logcheck: secret #%d is %d bytes; use at least %d distinctive bytes, or the check proves nothing", i+1, len(s), MinSecretLen)
		}
		found := map[int]bool{} // one leak per offset, the first encoding that matches
		for _, enc := range encodings(s) {
			needle := []byte(enc[1])
			for off := 0; ; {
				k := bytes.Index(logs[off:], needle)
				if k < 0 {
					break
				}
				at := off + k
				if !found[at] {
					found[at] = true
					leaks = append(leaks, Leak{Secret: i, Encoding: enc[0], Offset: at, Line: bytes.Count(logs[:at], []byte{'\n'}) + 1})
				}
				off = at + 1
			}
		}
	}
	return leaks, nil
}

// AssertNoSecrets fails t once per leak of any of secrets in logs (see
// Find), naming the secret by its position in the list and the line, and
// never printing the secret. An empty log is a failure too: a test that
// captured nothing proves nothing.
func AssertNoSecrets(t testing.TB, logs []byte, secrets ...string) {
	t.Helper()
	if len(secrets) == 0 {
		t.Fatal("logcheck: no secrets given")
		return
	}
	if len(bytes.TrimSpace(logs)) == 0 {
		t.Fatal("logcheck: the captured logs are empty: nothing was checked")
		return
	}
	leaks, err := Find(logs, secrets...)
	if err != nil {
		t.Fatal(err)
		return
	}
	for _, l := range leaks {
		t.Errorf("logcheck: %s leaked in the logs (%d bytes of logs checked)", l, len(logs))
	}
}

// Buffer collects log output from several goroutines (an io.Writer for a
// slog handler, or a subprocess's stdout and stderr).
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// Bytes returns a copy of everything written so far.
func (b *Buffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}
