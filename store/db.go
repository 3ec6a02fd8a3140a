package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"
)

const (
	dialectPostgres = "postgres"
	dialectSQLite   = "sqlite"
)

// sqlStore implements Store over database/sql for both dialects. Methods
// write queries once with '?' placeholders; q rebinds them for PostgreSQL.
type sqlStore struct {
	db      *sql.DB
	dialect string
	path    string  // SQLite file; "" for PostgreSQL
	seal    *sealer // nil without SESSION_ENCRYPTION_KEY
	log     *slog.Logger
}

var _ Store = (*sqlStore)(nil)

func (s *sqlStore) Dialect() string { return s.dialect }

func (s *sqlStore) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("store: ping %s: %w", s.dialect, err)
	}
	return nil
}

func (s *sqlStore) Close() error { return s.db.Close() }

// querier is what *sql.DB and *sql.Tx have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// q returns query with its '?' placeholders rebound for the dialect.
func (s *sqlStore) q(query string) string {
	if s.dialect != dialectPostgres {
		return query
	}
	return rebindDollar(query)
}

// rebindDollar turns '?' into $1, $2, … outside single-quoted literals.
func rebindDollar(query string) string {
	var b strings.Builder
	b.Grow(len(query) + 8)
	n, quoted := 0, false
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case c == '\'':
			quoted = !quoted
			b.WriteByte(c)
		case c == '?' && !quoted:
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// forUpdate is the row-lock clause for a SELECT inside a transaction.
func (s *sqlStore) forUpdate() string {
	if s.dialect == dialectPostgres {
		return " FOR UPDATE"
	}
	return ""
}

// inTx runs fn in a transaction (BEGIN IMMEDIATE on SQLite) and commits it
// unless fn fails.
func (s *sqlStore) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// placeholders returns "?, ?, …" with n marks.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// requireOne maps "no row affected" to ErrNotFound.
func requireOne(res sql.Result, err error, what string) error {
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return nil
}

// notFound maps sql.ErrNoRows to ErrNotFound, wrapping with context.
func notFound(err error, what string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// now is the current time at the stored (millisecond) precision.
func now() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }

// toMS stores t as unix milliseconds; the zero time is 0.
func toMS(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// fromMS is toMS's inverse; times come back in UTC.
func fromMS(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

// orNow is t at stored precision, or now when t is zero.
func orNow(t time.Time) time.Time {
	if t.IsZero() {
		return now()
	}
	return t.UTC().Truncate(time.Millisecond)
}

// jsonText validates raw JSON for a TEXT column ("" for none).
func jsonText(raw json.RawMessage, field string) (string, error) {
	if len(raw) == 0 {
		return "", nil
	}
	if !json.Valid(raw) {
		return "", fmt.Errorf("%s is not valid JSON", field)
	}
	return string(raw), nil
}

// rawJSON reads a TEXT column back ("" is nil).
func rawJSON(s string) json.RawMessage {
	if s == "" {
		return nil
	}
	return json.RawMessage(s)
}

// nullID stores 0 as NULL (optional foreign keys).
func nullID(id int64) sql.NullInt64 { return sql.NullInt64{Int64: id, Valid: id != 0} }
