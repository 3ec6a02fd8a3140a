package storetest_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/plyr-fm/plyrtasks/store"
	"github.com/plyr-fm/plyrtasks/store/storetest"
)

// The helpers hand out migrated stores that can hold sessions.
func TestHelpersGiveMigratedKeyedStores(t *testing.T) {
	for _, b := range []struct {
		name string
		open func(testing.TB) store.Store
	}{{"sqlite", storetest.SQLite}, {"postgres", storetest.Postgres}} {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			st := b.open(t)
			if st.Dialect() != b.name {
				t.Fatalf("dialect %q, want %q", st.Dialect(), b.name)
			}
			s := store.Session{ID: "s", DID: "did:plc:x", Kind: store.SessionPassword, Tokens: store.SessionTokens{AccessJWT: "a", RefreshJWT: "r"}}
			if err := st.SaveSession(ctx, s); err != nil {
				t.Fatal(err)
			}
			got, err := st.GetSession(ctx, "s")
			if err != nil || got.Tokens != s.Tokens {
				t.Fatalf("GetSession = %+v, %v", got.Tokens, err)
			}
		})
	}
}

// PostgresURL's database exists during the test and is gone after it.
func TestPostgresDatabaseIsDropped(t *testing.T) {
	var name string
	t.Run("use", func(t *testing.T) {
		u, err := url.Parse(storetest.PostgresURL(t))
		if err != nil {
			t.Fatal(err)
		}
		name = strings.TrimPrefix(u.Path, "/")
		if !strings.HasPrefix(name, "plyrtasks_test_") {
			t.Fatalf("database name %q", name)
		}
		if n := countDatabases(t, name); n != 1 {
			t.Fatalf("database %s exists %d times during the test", name, n)
		}
	})
	if name == "" {
		t.Skip("PostgreSQL unavailable")
	}
	if n := countDatabases(t, name); n != 0 {
		t.Fatalf("database %s still exists after cleanup", name)
	}
}

func countDatabases(t *testing.T, name string) int {
	t.Helper()
	db, err := sql.Open("pgx", storetest.DefaultPostgresURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM pg_database WHERE datname = $1`, name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// recorder is a testing.TB that records Skip and Fatal instead of ending
// the calling test.
type recorder struct {
	testing.TB
	skipped, failed string
}

func (r *recorder) Skip(args ...any)  { r.skipped = fmt.Sprint(args...); runtime.Goexit() }
func (r *recorder) Fatal(args ...any) { r.failed = fmt.Sprint(args...); runtime.Goexit() }
func (r *recorder) Fatalf(f string, args ...any) {
	r.failed = fmt.Sprintf(f, args...)
	runtime.Goexit()
}

// run calls fn on a goroutine so Goexit ends only that goroutine.
func (r *recorder) run(fn func(testing.TB)) {
	done := make(chan struct{})
	go func() { defer close(done); fn(r) }()
	<-done
}

func TestUnreachablePostgres(t *testing.T) {
	for _, c := range []struct {
		name, require      string
		wantSkip, wantFail bool
	}{
		{"skips by default", "", true, false},
		{"fails when required", "1", false, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("PLYRTASKS_TEST_POSTGRES_URL", "postgres://postgres:hunter2@127.0.0.1:1/postgres?sslmode=disable&connect_timeout=2")
			t.Setenv("PLYRTASKS_REQUIRE_POSTGRES", c.require)
			r := &recorder{TB: t}
			start := time.Now()
			r.run(func(tb testing.TB) { storetest.Postgres(tb) })
			if (r.skipped != "") != c.wantSkip || (r.failed != "") != c.wantFail {
				t.Fatalf("skipped=%q failed=%q", r.skipped, r.failed)
			}
			msg := r.skipped + r.failed
			for _, want := range []string{"PostgreSQL tests NOT run", "PLYRTASKS_TEST_POSTGRES_URL", "PLYRTASKS_REQUIRE_POSTGRES=1", "127.0.0.1:1"} {
				if !strings.Contains(msg, want) {
					t.Errorf("message lacks %q:\n%s", want, msg)
				}
			}
			if strings.Contains(msg, "hunter2") {
				t.Errorf("message leaks the password:\n%s", msg)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %v to give up", d)
			}
		})
	}
}
