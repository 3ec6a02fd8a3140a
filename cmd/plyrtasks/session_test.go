package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/plyr-fm/plyrtasks/pds/pdstest"
	"github.com/plyr-fm/plyrtasks/store"
	"github.com/plyr-fm/plyrtasks/store/storetest"
)

// runSession runs `plyrtasks session args...` with stdin and returns
// stdout, stderr and the error.
func runSession(t *testing.T, stdin string, args ...string) (string, string, error) {
	t.Helper()
	cmd := newSessionCmd()
	var out, errOut bytes.Buffer
	cmd.SetArgs(args)
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err := cmd.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

func sessionEnv(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("DATA_DIR", dir)
	t.Setenv("DATABASE_URL", "")
	t.Setenv("SESSION_ENCRYPTION_KEY", storetest.TestKey)
	return dir
}

func TestSessionAddListRm(t *testing.T) {
	pdsURL := pdstest.URL(t)
	dir := sessionEnv(t)
	acct := pdstest.NewAccount(t, pdsURL)

	out, _, err := runSession(t, acct.Password+"\n", "add", "--pds", pdsURL, "--identifier", acct.Handle, "--password-stdin")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	id := lines[len(lines)-1]
	if len(id) != 32 || strings.Contains(out, acct.Password) {
		t.Fatalf("output %q: the last line must be the session ID, and the password must not appear", out)
	}

	// The session is in the store, with working tokens.
	st, err := store.Open(context.Background(), store.Options{DataDir: dir, EncryptionKey: storetest.TestKey})
	if err != nil {
		t.Fatal(err)
	}
	s, err := st.GetSession(context.Background(), id)
	st.Close()
	if err != nil || s.DID != acct.DID || s.Handle != acct.Handle || s.Kind != store.SessionPassword || s.Tokens.RefreshJWT == "" {
		t.Fatalf("stored session = %+v, %v", s, err)
	}

	out, _, err = runSession(t, "", "list")
	if err != nil || !strings.Contains(out, id) || !strings.Contains(out, acct.DID) || strings.Contains(out, s.Tokens.AccessJWT) {
		t.Fatalf("list = %q, %v", out, err)
	}
	if out, _, err = runSession(t, "", "rm", id); err != nil || !strings.Contains(out, "removed session "+id) {
		t.Fatalf("rm = %q, %v", out, err)
	}
	if _, _, err = runSession(t, "", "rm", id); err == nil || !strings.Contains(err.Error(), "no session") {
		t.Fatalf("second rm err = %v", err)
	}
	if out, _, _ = runSession(t, "", "list"); strings.Contains(out, id) {
		t.Fatalf("list after rm = %q", out)
	}
}

func TestSessionAddRefusals(t *testing.T) {
	sessionEnv(t)
	cases := []struct {
		name  string
		stdin string
		args  []string
		want  string
	}{
		{"password only from stdin", "pw\n", []string{"add", "--pds", "http://127.0.0.1:1", "--identifier", "a.test"}, "--password-stdin is required"},
		{"empty stdin", "", []string{"add", "--pds", "http://127.0.0.1:1", "--identifier", "a.test", "--password-stdin"}, "no password on stdin"},
		{"pds required", "pw\n", []string{"add", "--identifier", "a.test", "--password-stdin"}, `"pds" not set`},
		{"not a URL", "pw\n", []string{"add", "--pds", "ftp://x", "--identifier", "a.test", "--password-stdin"}, "must be an http(s) URL"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := runSession(t, c.stdin, c.args...)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
		})
	}
}

func TestSessionAddWrongPassword(t *testing.T) {
	pdsURL := pdstest.URL(t)
	sessionEnv(t)
	acct := pdstest.NewAccount(t, pdsURL)
	_, _, err := runSession(t, "wrong\n", "add", "--pds", pdsURL, "--identifier", acct.Handle, "--password-stdin")
	if err == nil || !strings.Contains(err.Error(), "AuthenticationRequired") || strings.Contains(err.Error(), "wrong") {
		t.Fatalf("err = %v, want the PDS's refusal without the password", err)
	}
}

// The newcomer run: without SESSION_ENCRYPTION_KEY, session add logged in
// to the PDS first and only then failed to store, leaving a session made
// on the PDS behind. It must refuse before it dials (127.0.0.1:1 would
// answer "connection refused").
func TestSessionAddNeedsTheKeyBeforeLoggingIn(t *testing.T) {
	sessionEnv(t)
	t.Setenv("SESSION_ENCRYPTION_KEY", "")
	_, _, err := runSession(t, "pw\n", "add", "--pds", "http://127.0.0.1:1", "--identifier", "a.test", "--password-stdin")
	if err == nil || !strings.Contains(err.Error(), "SESSION_ENCRYPTION_KEY") || strings.Contains(err.Error(), "refused") {
		t.Fatalf("err = %v, want a refusal naming SESSION_ENCRYPTION_KEY before any dial", err)
	}
}
