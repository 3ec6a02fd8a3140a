package tasks

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"unicode/utf8"
)

// check collects field errors in declaration order.
type check struct{ errs []error }

func (c *check) add(field, reason string) { c.errs = append(c.errs, &FieldError{field, reason}) }

func (c *check) err() error { return errors.Join(c.errs...) }

func (c *check) required(field, v string) {
	if strings.TrimSpace(v) == "" {
		c.add(field, "is required")
	}
}

func (c *check) positive(field string, v int64) {
	if v <= 0 {
		c.add(field, "must be a positive integer")
	}
}

// slug: an identifier that is also a task ID and a storage path segment
// (an export's): letters, digits, - and _ only, so never "..", "/" or a
// character a URL or an object key must escape.
func (c *check) slug(field, v string) {
	for _, r := range v {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			c.add(field, "may contain only letters, digits, - and _")
			return
		}
	}
}

func (c *check) maxLen(field, v string, n int) {
	if utf8.RuneCountInString(v) > n {
		c.add(field, fmt.Sprintf("must be at most %d characters", n))
	}
}

// sessionID checks an opaque session ID: required, short, printable. Tokens
// are never accepted here (they would end up in Redis and the dashboard).
func (c *check) sessionID(v string) {
	c.required("session_id", v)
	if len(v) > 128 {
		c.add("session_id", "must be at most 128 characters (a session ID, not a token)")
	}
}

// did checks a DID ("did:plc:…", "did:web:…").
func (c *check) did(field, v string) {
	if v == "" {
		c.add(field, "is required")
		return
	}
	parts := strings.SplitN(v, ":", 3)
	if len(parts) != 3 || parts[0] != "did" || parts[1] == "" || parts[2] == "" || len(v) > 2048 {
		c.add(field, "must be a DID (did:method:identifier)")
	}
}

// maxATURILength is the longest at:// URI accepted (ATProto's limit).
const maxATURILength = 8192

// atURI checks an at:// URI of a record: authority (DID or handle),
// collection (NSID) and record key, each in ATProto's character set. The
// set is what keeps a payload's canonical JSON within MaxPayloadBytes: none
// of these characters is escaped, where "<" would grow six-fold.
func (c *check) atURI(field, v string) {
	if v == "" {
		c.add(field, "is required")
		return
	}
	if len(v) > maxATURILength {
		c.add(field, fmt.Sprintf("must be at most %d characters", maxATURILength))
		return
	}
	rest, ok := strings.CutPrefix(v, "at://")
	parts := strings.Split(rest, "/")
	if !ok || len(parts) != 3 || !allIn(parts[0], "._:%-") || !allIn(parts[1], ".-") || !allIn(parts[2], "._:~-") {
		c.add(field, "must be an at:// URI of a record (at://did/collection/rkey)")
	}
}

// allIn reports whether s is non-empty and made of ASCII letters, digits
// and the bytes of extra.
func allIn(s, extra string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || strings.IndexByte(extra, b) >= 0) {
			return false
		}
	}
	return true
}

func (c *check) cid(field, v string) {
	if v == "" {
		c.add(field, "is required")
		return
	}
	if len(v) < 8 || len(v) > 256 || strings.ContainsAny(v, " /:") {
		c.add(field, "must be a CID")
	}
}

func (c *check) httpURL(field, v string) {
	if v == "" {
		c.add(field, "is required")
		return
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		c.add(field, "must be an http(s) URL")
	}
}
