// Package storetest gives tests a ready, migrated store: an embedded SQLite
// one in a temporary directory, or a PostgreSQL one in a throwaway database
// that is dropped when the test ends.
//
//	st := storetest.SQLite(t)   // always available
//	pg := storetest.Postgres(t) // skips (or fails with PLYRTASKS_REQUIRE_POSTGRES=1) without a server
//
// Both are opened with TestKey, so sessions can be stored.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // "pgx" driver for the admin connection

	"github.com/plyr-fm/plyrtasks/store"
)

// TestKey is the fixed SESSION_ENCRYPTION_KEY of test stores (base64 of 32
// bytes). Never use it outside tests.
const TestKey = "cGx5cnRhc2tzLXRlc3Qta2V5LTMyLWJ5dGVzLWxvbmc="

// DefaultPostgresURL is the server Postgres uses when
// PLYRTASKS_TEST_POSTGRES_URL is unset.
const DefaultPostgresURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

const (
	envPostgresURL     = "PLYRTASKS_TEST_POSTGRES_URL"
	envRequirePostgres = "PLYRTASKS_REQUIRE_POSTGRES"
)

// SQLite returns a migrated embedded store in t.TempDir(), closed at cleanup.
func SQLite(t testing.TB) store.Store {
	t.Helper()
	return open(t, store.Options{DataDir: t.TempDir(), EncryptionKey: TestKey})
}

// Postgres returns a migrated store in a new database plyrtasks_test_<random>
// on PLYRTASKS_TEST_POSTGRES_URL (default DefaultPostgresURL); the database is
// dropped (WITH (FORCE)) at cleanup. When the server is unreachable the test
// is skipped, or fails if PLYRTASKS_REQUIRE_POSTGRES=1.
func Postgres(t testing.TB) store.Store {
	t.Helper()
	return open(t, store.Options{DatabaseURL: PostgresURL(t), EncryptionKey: TestKey})
}

// PostgresURL creates an empty database like Postgres does (dropped at
// cleanup, same skip rules) and returns its URL, for tests that open or
// migrate it themselves (e.g. through DATABASE_URL).
func PostgresURL(t testing.TB) string {
	t.Helper()
	server := os.Getenv(envPostgresURL)
	if server == "" {
		server = DefaultPostgresURL
	}
	u, err := url.Parse(server)
	if err != nil {
		t.Fatalf("storetest: %s=%q is not a URL: %v", envPostgresURL, server, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	admin, err := sql.Open("pgx", server)
	if err == nil {
		err = admin.PingContext(ctx)
	}
	if err != nil {
		if admin != nil {
			admin.Close()
		}
		msg := fmt.Sprintf("storetest: PostgreSQL at %s is unreachable: %v\n"+
			"  *** PostgreSQL tests NOT run. Start PostgreSQL (trust auth, user postgres) on 127.0.0.1:5432\n"+
			"  *** or set %s=postgres://user@host:port/postgres?sslmode=disable;\n"+
			"  *** set %s=1 to make this a failure instead of a skip.", u.Redacted(), err, envPostgresURL, envRequirePostgres)
		if os.Getenv(envRequirePostgres) == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	defer admin.Close()

	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "plyrtasks_test_" + hex.EncodeToString(b[:])
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("storetest: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		db, err := sql.Open("pgx", server)
		if err != nil {
			t.Errorf("storetest: drop database %s: %v", name, err)
			return
		}
		defer db.Close()
		if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("storetest: drop database %s: %v", name, err)
		}
	})
	u.Path = "/" + name
	return u.String()
}

func open(t testing.TB, o store.Options) store.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := store.Open(ctx, o)
	if err != nil {
		t.Fatalf("storetest: open: %v", err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("storetest: close: %v", err)
		}
	})
	if err := st.Migrate(ctx); err != nil {
		t.Fatalf("storetest: migrate: %v", err)
	}
	return st
}
