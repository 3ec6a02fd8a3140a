package jsonhttp

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

type apiErr struct {
	Status  int
	Message string `json:"error"`
}

func (e *apiErr) Error() string { return fmt.Sprintf("%d %s", e.Status, e.Message) }

func decodeErr(status int, answer []byte) error {
	e := &apiErr{}
	if json.Unmarshal(answer, e) != nil {
		e.Message = ""
	}
	e.Message = Message(e.Message, answer)
	e.Status = status
	return e
}

func TestDo(t *testing.T) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			w.WriteHeader(401)
			io.WriteString(w, `{"error":"bad token"}`)
			return
		}
		switch r.URL.Path {
		case "/ok":
			b, _ := io.ReadAll(r.Body)
			fmt.Fprintf(w, `{"echo":%q,"type":%q}`, b, r.Header.Get("Content-Type"))
		case "/proxy":
			w.WriteHeader(502)
			io.WriteString(w, "  <html>bad gateway</html>\n")
		case "/notjson":
			io.WriteString(w, "plain")
		}
	}))
	defer hs.Close()
	c := Client{BaseURL: hs.URL + "/", Token: "tok"}
	tests := []struct {
		name, path string
		token      string
		want       string // the answer's echo, or the error
	}{
		{"ok", "/ok", "tok", `{"a":1} application/json`},
		{"API error", "/ok", "wrong", "401 bad token"},
		{"non-JSON error answer", "/proxy", "tok", "502 <html>bad gateway</html>"},
		{"non-JSON success answer", "/notjson", "tok", "POST /notjson: answer is not the expected JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.Token = tt.token
			var out struct{ Echo, Type string }
			err := c.Do(context.Background(), "POST", tt.path, []byte(`{"a":1}`), &out, decodeErr)
			got := out.Echo + " " + out.Type
			if err != nil {
				got = err.Error()
			}
			if len(got) < len(tt.want) || got[:len(tt.want)] != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
