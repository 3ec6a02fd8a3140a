package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	"modernc.org/sqlite"
)

//go:embed migrations/postgres/*.sql migrations/sqlite/*.sql
var migrationFiles embed.FS

// migrationLockID is the PostgreSQL advisory lock that serialises Migrate
// across processes (every replica migrates at start).
const migrationLockID = 0x706c7972 // "plyr"

// Migrate applies pending migrations; already-applied ones are skipped, so
// it is safe at every start and from several processes at once (PostgreSQL:
// advisory lock; SQLite: an exclusive lock on plyrtasks.db.migrate-lock).
// Versions may be applied out of order (see migrations/README.md for the
// reserved ranges).
func (s *sqlStore) Migrate(ctx context.Context) error {
	dir, gdialect := "migrations/sqlite", goose.DialectSQLite3
	opts := []goose.ProviderOption{
		goose.WithDisableGlobalRegistry(true),
		goose.WithAllowOutofOrder(true),
		goose.WithSlog(s.log),
	}
	if s.dialect == dialectPostgres {
		dir, gdialect = "migrations/postgres", goose.DialectPostgres
		locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(migrationLockID))
		if err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	} else {
		unlock, err := lockSQLiteMigrations(ctx, s.path+".migrate-lock")
		if err != nil {
			return fmt.Errorf("migrate sqlite: %w", err)
		}
		defer unlock()
	}
	fsys, err := fs.Sub(migrationFiles, dir)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	p, err := goose.NewProvider(gdialect, s.db, fsys, opts...)
	if err != nil {
		return fmt.Errorf("migrate %s: %w", s.dialect, err)
	}
	res, err := p.Up(ctx)
	if err != nil {
		return fmt.Errorf("migrate %s: %w", s.dialect, err)
	}
	for _, r := range res {
		s.log.InfoContext(ctx, "store: migration applied", "dialect", s.dialect, "version", r.Source.Version, "duration", r.Duration)
	}
	return nil
}

// lockSQLiteMigrations holds an exclusive transaction on a side file until
// unlock. goose has no SQLite locker, and two processes migrating one file
// would both try to create the same tables. The lock is SQLite's own file
// lock, so the OS drops it if the holder dies; a waiter retries (each BEGIN
// waits busy_timeout) until ctx ends.
func lockSQLiteMigrations(ctx context.Context, path string) (unlock func(), err error) {
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(5000)&_txlock=exclusive")
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	for {
		tx, err := db.BeginTx(ctx, nil)
		if err == nil {
			return func() { _ = tx.Rollback(); _ = db.Close() }, nil
		}
		var se *sqlite.Error
		busy := errors.As(err, &se) && se.Code()&0xff == sqliteBusy
		if ctxErr := ctx.Err(); !busy || ctxErr != nil {
			db.Close()
			return nil, fmt.Errorf("migration lock %s: %w", path, errors.Join(ctxErr, err))
		}
	}
}

// sqliteBusy is SQLITE_BUSY, the primary code of "database is locked".
const sqliteBusy = 5
