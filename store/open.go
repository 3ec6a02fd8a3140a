package store

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	_ "modernc.org/sqlite"             // registers the "sqlite" database/sql driver
)

// DefaultDataDir is where the embedded SQLite database lives when
// Options.DataDir is empty.
const DefaultDataDir = "./data"

// SQLiteFile is the embedded database's file name inside the data directory.
const SQLiteFile = "plyrtasks.db"

// Options configure Open.
type Options struct {
	// DatabaseURL selects PostgreSQL (postgres:// or postgresql://). Empty
	// selects the embedded SQLite database under DataDir.
	DatabaseURL string
	// DataDir holds the SQLite file DataDir/plyrtasks.db. Default "./data";
	// created (0700) when missing. Ignored for PostgreSQL.
	DataDir string
	// EncryptionKey is SESSION_ENCRYPTION_KEY: standard base64 of exactly 32
	// bytes. Empty means sessions are refused with ErrNoEncryptionKey; every
	// other method works.
	EncryptionKey string
	// Logger receives migration progress. Default: discard.
	Logger *slog.Logger
}

// Embedded reports whether a DATABASE_URL selects the embedded SQLite store.
func Embedded(databaseURL string) bool { return strings.TrimSpace(databaseURL) == "" }

// ParseKey decodes a SESSION_ENCRYPTION_KEY value: standard (or URL-safe)
// base64 of exactly 32 random bytes, e.g. the output of `openssl rand -base64 32`.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("SESSION_ENCRYPTION_KEY is empty: want base64 of 32 random bytes (openssl rand -base64 32)")
	}
	var key []byte
	var err error
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if key, err = enc.DecodeString(s); err == nil {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("SESSION_ENCRYPTION_KEY is not base64: want base64 of 32 random bytes (openssl rand -base64 32): %w", err)
	}
	if len(key) != 32 {
		return nil, fmt.Errorf("SESSION_ENCRYPTION_KEY decodes to %d bytes: want base64 of exactly 32 random bytes (openssl rand -base64 32)", len(key))
	}
	return key, nil
}

// Open connects to PostgreSQL or opens (creating) the embedded SQLite
// database and checks that it answers. It does not migrate: call Migrate.
func Open(ctx context.Context, o Options) (Store, error) {
	s := &sqlStore{log: o.Logger}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.EncryptionKey != "" {
		key, err := ParseKey(o.EncryptionKey)
		if err != nil {
			return nil, err
		}
		if s.seal, err = newSealer(key); err != nil {
			return nil, err
		}
	}

	var err error
	if Embedded(o.DatabaseURL) {
		s.dialect = dialectSQLite
		s.db, s.path, err = openSQLite(o.DataDir)
	} else {
		s.dialect = dialectPostgres
		s.db, err = openPostgres(o.DatabaseURL)
	}
	if err != nil {
		return nil, err
	}
	if err := s.db.PingContext(ctx); err != nil {
		s.db.Close()
		return nil, fmt.Errorf("store: connect %s: %w", s.dialect, err)
	}
	return s, nil
}

func openPostgres(databaseURL string) (*sql.DB, error) {
	u, err := url.Parse(databaseURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return nil, errors.New("DATABASE_URL must be a postgres:// or postgresql:// URL (or empty for embedded SQLite)")
	}
	db, err := sql.Open("pgx", databaseURL)
	if err != nil {
		return nil, fmt.Errorf("store: open postgres: %w", err)
	}
	db.SetMaxOpenConns(20)
	db.SetMaxIdleConns(5)
	return db, nil
}

// sqliteParams: WAL so readers never block the writer; busy_timeout so a
// writer waits (5s) for the lock instead of failing; foreign keys enforced;
// _txlock=immediate makes every transaction take the write lock at BEGIN, so
// two transactions that read then write cannot deadlock on lock upgrade.
const sqliteParams = "_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(1)&_txlock=immediate"

func openSQLite(dataDir string) (*sql.DB, string, error) {
	if dataDir == "" {
		dataDir = DefaultDataDir
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, "", fmt.Errorf("store: create DATA_DIR %s: %w", dataDir, err)
	}
	path := filepath.Join(dataDir, SQLiteFile)
	if strings.ContainsRune(path, '?') {
		return nil, "", fmt.Errorf("store: DATA_DIR %q must not contain '?'", dataDir)
	}
	db, err := sql.Open("sqlite", path+"?"+sqliteParams)
	if err != nil {
		return nil, "", fmt.Errorf("store: open sqlite %s: %w", path, err)
	}
	// SQLite has one writer at a time; a small pool keeps readers concurrent
	// without a crowd of connections queueing on busy_timeout.
	db.SetMaxOpenConns(4)
	db.SetMaxIdleConns(4)
	return db, path, nil
}
