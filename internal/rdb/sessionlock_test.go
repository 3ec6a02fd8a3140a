package rdb_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plyr-fm/plyrtasks/internal/rdb"
	"github.com/plyr-fm/plyrtasks/internal/redistest"
)

func TestSessionLockKey(t *testing.T) {
	if got := rdb.SessionLockKey("plyr", "abc"); got != "plyr:pds:session-lock:abc" {
		t.Fatalf("key = %q", got)
	}
	if got := rdb.SessionLockKey("", "abc"); got != "pds:session-lock:abc" {
		t.Fatalf("key without namespace = %q", got)
	}
}

func TestSessionLockExcludesAndReleasesOnlyItsOwn(t *testing.T) {
	s := redistest.Start(t, redistest.Options{})
	c := s.Client(t, s.DB(t))
	ctx := context.Background()
	key := rdb.SessionLockKey("t", "s1")

	a, ok, err := rdb.TryLockSession(ctx, c, key, time.Minute)
	if err != nil || !ok {
		t.Fatalf("first lock: %v %v", ok, err)
	}
	if _, ok, err := rdb.TryLockSession(ctx, c, key, time.Minute); err != nil || ok {
		t.Fatalf("second lock while held: ok=%v err=%v", ok, err)
	}
	if ttl := c.PTTL(ctx, key).Val(); ttl <= 0 || ttl > time.Minute {
		t.Fatalf("lock lease = %s, want (0, 1m]", ttl)
	}
	if released, err := a.Unlock(ctx); err != nil || !released {
		t.Fatalf("unlock: %v %v", released, err)
	}

	// A holder whose lease ran out must not release the next holder's lock.
	stale, ok, _ := rdb.TryLockSession(ctx, c, key, 50*time.Millisecond)
	if !ok {
		t.Fatal("lock after release")
	}
	time.Sleep(120 * time.Millisecond)
	next, ok, _ := rdb.TryLockSession(ctx, c, key, time.Minute)
	if !ok {
		t.Fatal("lock after the lease expired")
	}
	if released, err := stale.Unlock(ctx); err != nil || released {
		t.Fatalf("stale unlock released=%v err=%v, want false", released, err)
	}
	if c.Exists(ctx, key).Val() != 1 {
		t.Fatal("the stale holder deleted the next holder's lock")
	}
	if released, _ := next.Unlock(ctx); !released {
		t.Fatal("the current holder could not release")
	}
}

func TestLockSessionWaitsItsTurn(t *testing.T) {
	s := redistest.Start(t, redistest.Options{})
	c := s.Client(t, s.DB(t))
	ctx := context.Background()
	key := rdb.SessionLockKey("t", "s2")

	var inside, maxInside atomic.Int32
	var wg sync.WaitGroup
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, err := rdb.LockSession(ctx, c, key, 5*time.Second, 10*time.Second, 5*time.Millisecond)
			if err != nil {
				t.Error(err)
				return
			}
			n := inside.Add(1)
			for {
				m := maxInside.Load()
				if n <= m || maxInside.CompareAndSwap(m, n) {
					break
				}
			}
			time.Sleep(10 * time.Millisecond)
			inside.Add(-1)
			if _, err := l.Unlock(ctx); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if maxInside.Load() != 1 {
		t.Fatalf("%d holders at once, want 1", maxInside.Load())
	}

	held, _, _ := rdb.TryLockSession(ctx, c, key, time.Minute)
	defer held.Unlock(ctx)
	_, err := rdb.LockSession(ctx, c, key, time.Minute, 60*time.Millisecond, 5*time.Millisecond)
	if !errors.Is(err, rdb.ErrSessionLockTimeout) {
		t.Fatalf("err = %v, want ErrSessionLockTimeout", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := rdb.LockSession(cctx, c, key, time.Minute, time.Minute, 5*time.Millisecond); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled wait: err = %v", err)
	}
}
