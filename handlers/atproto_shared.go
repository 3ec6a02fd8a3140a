package handlers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/plyr-fm/plyrtasks/config"
	"github.com/plyr-fm/plyrtasks/job"
	"github.com/plyr-fm/plyrtasks/pds"
	"github.com/plyr-fm/plyrtasks/store"
)

// The ATProto family (issue 3): tasks that act as a user on their PDS.
// Shared rules, so each handler file only says what it writes:
//
//   - A task names a session_id; the session (and its tokens) come from the
//     store through pds.Client, which refreshes an expired access token once
//     across all workers. A session that is gone or cannot be refreshed
//     archives the task with "session expired" (job.ErrSessionExpired).
//   - Every record key is deterministic (a TID from the row's creation time
//     and ID, "self", or the key already stored), and writes are putRecord,
//     so a retry or a second run lands on the record the first one made.
//     Lists are read-modify-written with swapRecord compare-and-swap, so two
//     concurrent syncs of one list make one record with both changes.
//   - A row removed before its task ran (a like, a comment) leaves nothing
//     on the PDS: the task writes nothing and deletes what an earlier attempt
//     wrote.
//   - Errors leave through pds.Classify: network errors and 5xx retry, 429
//     waits for the server's delay, other 4xx archive with the XRPC reason.
//   - Logs carry IDs and URIs, never tokens or comment text.

// PDSFromConfig builds the PDS client from d's configuration, store and
// Redis (refresh locks under TASKS_NAMESPACE).
func PDSFromConfig(d Deps) (*pds.Client, error) {
	var a config.ATProto
	ns := ""
	if d.Config != nil {
		a, ns = d.Config.ATProto, d.Config.Namespace
	}
	return pds.New(pds.Options{
		Store:     d.Store,
		Redis:     d.Redis,
		Namespace: ns,
		Timeout:   a.PDSTimeout,
		OAuth: pds.OAuthClient{
			ClientID:  a.OAuthClientID,
			SecretKey: a.OAuthClientSecretKey,
			KeyID:     a.OAuthClientKeyID,
		},
		Logger: d.Logger,
	})
}

// withPDS fills d.PDS when the caller left it unset.
func withPDS(d Deps) (Deps, error) {
	if d.PDS != nil || d.Store == nil {
		return d, nil
	}
	c, err := PDSFromConfig(d)
	if err != nil {
		return d, fmt.Errorf("atproto: %w", err)
	}
	d.PDS = c
	return d, nil
}

// pdsBase is what every ATProto handler shares.
type pdsBase struct {
	pds   *pds.Client
	store store.Store
	redis redis.UniversalClient // nil: no cross-task scrobble dedupe
	cfg   config.ATProto
	col   config.Collections
	log   *slog.Logger
	ns    string // Redis key namespace
}

func newPDSBase(d Deps) pdsBase {
	b := pdsBase{pds: d.PDS, store: d.Store, redis: d.Redis, log: d.Logger, ns: "plyr"}
	if d.Config != nil {
		b.cfg = d.Config.ATProto
		if d.Config.Namespace != "" {
			b.ns = d.Config.Namespace
		}
	}
	if b.cfg.TealStatusTTL <= 0 {
		b.cfg.TealStatusTTL = 10 * time.Minute
	}
	if b.cfg.TealDedupeWindow <= 0 {
		b.cfg.TealDedupeWindow = time.Minute
	}
	if b.cfg.PublicURL == "" {
		b.cfg.PublicURL = "https://plyr.fm"
	}
	b.col = b.cfg.Collections()
	if b.log == nil {
		b.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return b
}

// session loads the task's session. When did is not empty the session must
// act as that DID: anything else is a wiring bug that no retry fixes.
func (b pdsBase) session(ctx context.Context, id, did string) (*pds.Session, error) {
	if b.pds == nil {
		// A wiring bug: retrying cannot help until the worker is fixed.
		return nil, job.Permanent(errors.New("atproto: no PDS client configured (handlers.Deps.PDS needs a Store)"))
	}
	s, err := b.pds.Session(ctx, id)
	if err != nil {
		return nil, err
	}
	if did != "" && s.DID() != did {
		return nil, job.Permanent(fmt.Errorf("session %s acts as %s, not %s", id, s.DID(), did))
	}
	return s, nil
}

// ownRecordKey returns the record key of uri after checking that it is a
// record of collection in sess's own repo: a task may only touch its user's
// records of its own kind.
func ownRecordKey(sess *pds.Session, uri, collection string) (string, error) {
	did, col, rkey, err := pds.ParseRecordURI(uri)
	if err != nil {
		return "", job.Permanent(err)
	}
	if did != sess.DID() {
		return "", job.Permanent(fmt.Errorf("%s is in %s's repo, not the session's (%s)", uri, did, sess.DID()))
	}
	if col != collection {
		return "", job.Permanent(fmt.Errorf("%s is a %s record, want %s", uri, col, collection))
	}
	return rkey, nil
}

// storedRecordKey returns the key of a record URI stored on a row when it
// is one of sess's records of collection, else "".
func storedRecordKey(sess *pds.Session, uri, collection string) string {
	if uri == "" {
		return ""
	}
	rkey, err := ownRecordKey(sess, uri, collection)
	if err != nil {
		return ""
	}
	return rkey
}

// rowRecordKey is the record key of a row's record: a TID of the row's
// creation time (at the millisecond precision the store keeps, so the key
// is the same before and after a round trip through the database) with the
// row's ID as clock ID.
func rowRecordKey(createdAt time.Time, id int64) string {
	return pds.TID(time.UnixMilli(createdAt.UnixMilli()), id)
}

// maxSwapAttempts bounds a compare-and-swap loop. Each lost race means
// someone else wrote the record just now; this many in a row means a
// storm, and the task retries later.
const maxSwapAttempts = 8

// listBuilder returns the list to write given the current one (nil when
// there is none), and whether to write it at all.
type listBuilder func(old *pds.ListRecord) (next pds.ListRecord, write bool)

// upsertList reads, rebuilds and writes the list at rkey with swapRecord
// compare-and-swap, starting over when someone else wrote it in between.
// It returns the list's ref ("" URI when there is no list and build chose
// not to create one) and whether it wrote.
func (b pdsBase) upsertList(ctx context.Context, sess *pds.Session, rkey string, build listBuilder) (pds.Ref, bool, error) {
	for range maxSwapAttempts {
		var (
			old  *pds.ListRecord
			cur  pds.Record
			swap = pds.IfMissing()
		)
		rec, err := sess.GetRecord(ctx, b.col.List, rkey)
		switch {
		case errors.Is(err, pds.ErrRecordNotFound):
		case err != nil:
			return pds.Ref{}, false, err
		default:
			cur, swap = rec, pds.IfCID(rec.CID)
			var l pds.ListRecord
			if rec.Decode(&l) != nil {
				// Unreadable: rebuild it from our rows.
				l = pds.ListRecord{}
			}
			old = &l
		}
		next, write := build(old)
		if !write {
			return pds.Ref{URI: cur.URI, CID: cur.CID}, false, nil
		}
		ref, err := sess.PutRecord(ctx, b.col.List, rkey, next, swap)
		if pds.IsInvalidSwap(err) {
			continue
		}
		if err != nil {
			return pds.Ref{}, false, err
		}
		return ref, true, nil
	}
	return pds.Ref{}, false, fmt.Errorf("list %s/%s changed %d times while being written; retrying later", b.col.List, rkey, maxSwapAttempts)
}

// listTimes fills next's createdAt (kept from old) and updatedAt (now, when
// old exists), and reports whether anything but timestamps changed.
func listTimes(old *pds.ListRecord, next *pds.ListRecord, now time.Time) (changed bool) {
	if old == nil {
		next.CreatedAt = pds.Datetime(now)
		return true
	}
	next.CreatedAt = old.CreatedAt
	if next.CreatedAt == "" {
		next.CreatedAt = pds.Datetime(now)
	}
	if old.Type == "" || old.CreatedAt == "" || !old.SameContent(*next) {
		next.UpdatedAt = pds.Datetime(now)
		return true
	}
	return false
}

// trackRefs returns the strongRefs of tracks that have a record, in the
// given order, skipping tracks that are gone or not yet published.
func (b pdsBase) trackRefs(ctx context.Context, ids []int64) ([]pds.ListItem, error) {
	items := make([]pds.ListItem, 0, len(ids))
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		t, err := b.store.GetTrack(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("track %d: %w", id, err)
		}
		if t.RecordURI == "" || t.RecordCID == "" || seen[t.RecordURI] {
			continue
		}
		seen[t.RecordURI] = true
		items = append(items, pds.ListItem{Subject: pds.StrongRef{URI: t.RecordURI, CID: t.RecordCID}})
	}
	return items, nil
}

// keepOrder returns want's items ordered as they already are in old (items
// old has that want lacks are dropped), with want's other items added: at
// the end (append) or, newest-first lists, at the front (prepend) in want's
// order. A stored item whose CID changed takes want's CID.
func keepOrder(old *pds.ListRecord, want []pds.ListItem, prepend bool) []pds.ListItem {
	if old == nil || len(old.Items) == 0 {
		return want
	}
	byURI := make(map[string]pds.ListItem, len(want))
	for _, it := range want {
		byURI[it.Subject.URI] = it
	}
	kept := make([]pds.ListItem, 0, len(want))
	placed := make(map[string]bool, len(want))
	for _, it := range old.Items {
		if w, ok := byURI[it.Subject.URI]; ok && !placed[it.Subject.URI] {
			kept = append(kept, w)
			placed[it.Subject.URI] = true
		}
	}
	var fresh []pds.ListItem
	for _, it := range want {
		if !placed[it.Subject.URI] {
			fresh = append(fresh, it)
		}
	}
	if prepend {
		return append(fresh, kept...)
	}
	return append(kept, fresh...)
}

// setResult records a task result; a failure to record it is logged, not
// fatal (the work is done).
func (b pdsBase) setResult(t *job.Task, v any) {
	if err := t.SetResult(v); err != nil {
		b.log.Warn("atproto: set task result", "task_id", t.ID, "err", err)
	}
}
