package store_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/plyr-fm/plyrtasks/store"
	"github.com/plyr-fm/plyrtasks/store/storetest"
)

func TestParseKey(t *testing.T) {
	want := []byte("plyrtasks-test-key-32-bytes-long")
	for _, c := range []struct {
		name, in string
		err      string // "" = ok
	}{
		{"std base64", storetest.TestKey, ""},
		{"std base64 with newline", storetest.TestKey + "\n", ""},
		{"url-safe unpadded", "cGx5cnRhc2tzLXRlc3Qta2V5LTMyLWJ5dGVzLWxvbmc", ""},
		{"empty", "", "SESSION_ENCRYPTION_KEY is empty"},
		{"not base64", "not base64 at all!", "SESSION_ENCRYPTION_KEY is not base64"},
		{"16 bytes", "MDEyMzQ1Njc4OWFiY2RlZg==", "SESSION_ENCRYPTION_KEY decodes to 16 bytes"},
	} {
		t.Run(c.name, func(t *testing.T) {
			key, err := store.ParseKey(c.in)
			if c.err == "" {
				if err != nil || !bytes.Equal(key, want) {
					t.Fatalf("ParseKey = %q, %v; want %q", key, err, want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), "32 random bytes") {
				t.Fatalf("ParseKey error = %v, want %q and the expected form", err, c.err)
			}
		})
	}
}

func TestOpenRejectsBadOptions(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name string
		o    store.Options
		want string
	}{
		{"bad key", store.Options{DataDir: t.TempDir(), EncryptionKey: "short"}, "SESSION_ENCRYPTION_KEY"},
		{"mysql url", store.Options{DatabaseURL: "mysql://x"}, "DATABASE_URL must be a postgres://"},
		{"unreachable postgres", store.Options{DatabaseURL: "postgres://postgres@127.0.0.1:1/x?sslmode=disable&connect_timeout=2"}, "store: connect postgres"},
	} {
		t.Run(c.name, func(t *testing.T) {
			st, err := store.Open(ctx, c.o)
			if err == nil {
				st.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Open error = %v, want %q", err, c.want)
			}
		})
	}
}

func TestOpenSQLiteCreatesDataDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nested", "data")
	st, err := store.Open(context.Background(), store.Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := os.Stat(filepath.Join(dir, store.SQLiteFile)); err != nil {
		t.Fatalf("database file not created: %v", err)
	}
	var mode, fk, busy string
	db := store.RawDB(st)
	for q, dst := range map[string]*string{"PRAGMA journal_mode": &mode, "PRAGMA foreign_keys": &fk, "PRAGMA busy_timeout": &busy} {
		if err := db.QueryRow(q).Scan(dst); err != nil {
			t.Fatal(err)
		}
	}
	if mode != "wal" || fk != "1" || busy != "5000" {
		t.Fatalf("journal_mode=%s foreign_keys=%s busy_timeout=%s, want wal 1 5000", mode, fk, busy)
	}
	// Without a key the store works but refuses sessions.
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := st.GetSession(context.Background(), "x"); !errors.Is(err, store.ErrNoEncryptionKey) {
		t.Fatalf("GetSession without key: %v", err)
	}
}

func TestEmbedded(t *testing.T) {
	for in, want := range map[string]bool{"": true, "  ": true, "postgres://x": false} {
		if got := store.Embedded(in); got != want {
			t.Errorf("Embedded(%q) = %v, want %v", in, got, want)
		}
	}
}
