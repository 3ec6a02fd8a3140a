package rdb

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/redis/go-redis/v9"
)

// SessionLock is a held lock on one user session's token refresh. Worker
// processes that find a session's access token expired at the same time
// take it in turn, so a rotated refresh token is used once and never lost:
// the holder refreshes, the next one re-reads the session and finds fresh
// tokens.
//
// The lock is SET NX PX with a random token and released by a
// compare-and-delete script, so a holder whose lease ran out can never
// release the lock a later holder took.
type SessionLock struct {
	client redis.UniversalClient
	key    string
	token  string
}

// SessionLockKey is the Redis key of session id's refresh lock under a
// deployment namespace ("plyr" → "plyr:pds:session-lock:<id>").
func SessionLockKey(namespace, sessionID string) string {
	if namespace == "" {
		return "pds:session-lock:" + sessionID
	}
	return namespace + ":pds:session-lock:" + sessionID
}

// ErrSessionLockTimeout is returned (wrapped) when LockSession gave up
// waiting: another holder kept the lock longer than the caller could wait.
var ErrSessionLockTimeout = errors.New("timed out waiting for the session refresh lock")

// TryLockSession takes the lock at key for ttl if nobody holds it. It
// reports false (and a nil lock) when someone does.
func TryLockSession(ctx context.Context, c redis.UniversalClient, key string, ttl time.Duration) (*SessionLock, bool, error) {
	if ttl < time.Millisecond {
		return nil, false, fmt.Errorf("rdb: session lock ttl %s is below 1ms", ttl)
	}
	token, err := randomToken()
	if err != nil {
		return nil, false, err
	}
	ok, err := c.SetNX(ctx, key, token, ttl).Result()
	if err != nil {
		return nil, false, fmt.Errorf("rdb: lock %s: %w", key, err)
	}
	if !ok {
		return nil, false, nil
	}
	return &SessionLock{client: c, key: key, token: token}, true, nil
}

// LockSession waits until it holds the lock at key (leased for ttl),
// polling every poll (with jitter) for at most wait. It returns
// ErrSessionLockTimeout when wait runs out and ctx's error when ctx ends.
func LockSession(ctx context.Context, c redis.UniversalClient, key string, ttl, wait, poll time.Duration) (*SessionLock, error) {
	if poll <= 0 {
		poll = 25 * time.Millisecond
	}
	deadline := time.Now().Add(wait)
	for {
		l, ok, err := TryLockSession(ctx, c, key, ttl)
		if err != nil {
			return nil, err
		}
		if ok {
			return l, nil
		}
		if !time.Now().Before(deadline) {
			return nil, fmt.Errorf("rdb: %s after %s: %w", key, wait, ErrSessionLockTimeout)
		}
		// Jitter keeps waiters from polling in lock-step.
		d := poll/2 + rand.N(poll)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// releaseSessionLock deletes KEYS[1] only while it still holds ARGV[1], the
// holder's token: a lease that expired and was taken by someone else is
// left alone.
var releaseSessionLock = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
	return redis.call("DEL", KEYS[1])
end
return 0
`)

// Unlock releases the lock. It reports false when the lease had already
// expired (the lock was no longer ours); that is not an error.
func (l *SessionLock) Unlock(ctx context.Context) (bool, error) {
	n, err := releaseSessionLock.Run(ctx, l.client, []string{l.key}, l.token).Int()
	if err != nil {
		return false, fmt.Errorf("rdb: unlock %s: %w", l.key, err)
	}
	return n == 1, nil
}

// Key returns the lock's Redis key.
func (l *SessionLock) Key() string { return l.key }

func randomToken() (string, error) {
	var b [16]byte
	if _, err := crand.Read(b[:]); err != nil {
		return "", fmt.Errorf("rdb: lock token: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}
