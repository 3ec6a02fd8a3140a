package tasks

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
)

// Redacted is what a redacted value reads as.
const Redacted = "[redacted]"

// sensitiveKey reports whether a JSON key holds a secret or user content that
// must not reach logs or the dashboard.
func sensitiveKey(k string) bool {
	k = strings.ToLower(k)
	switch k {
	case "text", "password", "token", "secret", "authorization", "cookie":
		return true
	}
	for _, s := range []string{"token", "password", "secret", "jwt", "api_key", "apikey", "private"} {
		if strings.Contains(k, s) {
			return true
		}
	}
	return false
}

// Redact returns payload with every sensitive value (comment text, tokens,
// passwords, secrets) replaced by Redacted, at any depth. Non-JSON input is
// replaced whole: it cannot be inspected, so it is not shown.
func Redact(payload []byte) []byte {
	if len(payload) == 0 {
		return payload
	}
	// Numbers stay their text: through float64, an ID past 2^53 would show
	// as a neighbour and 1e400 as "not JSON".
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return []byte(`"` + Redacted + ` (not JSON)"`)
	}
	if _, err := dec.Token(); err != io.EOF {
		return []byte(`"` + Redacted + ` (not JSON)"`)
	}
	out, err := json.Marshal(redactValue(v))
	if err != nil {
		return []byte(`"` + Redacted + `"`)
	}
	return out
}

func redactValue(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, val := range t {
			if sensitiveKey(k) {
				t[k] = Redacted
			} else {
				t[k] = redactValue(val)
			}
		}
		return t
	case []any:
		for i := range t {
			t[i] = redactValue(t[i])
		}
		return t
	default:
		return v
	}
}
