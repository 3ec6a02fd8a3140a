package handlers

import (
	"context"
	"errors"
	"fmt"

	"github.com/plyr-fm/plyrtasks/job"
	"github.com/plyr-fm/plyrtasks/pds"
	"github.com/plyr-fm/plyrtasks/store"
	"github.com/plyr-fm/plyrtasks/tasks"
)

// pds:like (args: tasks.LikeArgs) writes the fm.plyr.like record of a like
// row and stores its URI on the row; pds:unlike (tasks.UnlikeArgs) deletes
// a like record.
//
// The record key is LikeRecordKey(row) (a TID of the like's creation time
// with its ID as clock ID) unless the row already has a record, so retries
// rewrite the same record. A like removed before its task ran leaves
// nothing behind: the task writes nothing and deletes what an earlier
// attempt wrote; a like removed while the task was writing is caught by a
// second look at the row after the write, which deletes the new record.

// LikeRecordKey is the record key of like's fm.plyr.like record: producers
// can derive the record URI (at://<did>/fm.plyr.like/<key>) before the task
// has run.
func LikeRecordKey(l store.Like) string { return rowRecordKey(l.CreatedAt, l.ID) }

// Like handles pds:like.
type Like struct{ pdsBase }

// NewLike returns the pds:like handler.
func NewLike(d Deps) *Like { return &Like{newPDSBase(d)} }

// Work writes one like record.
func (h *Like) Work(ctx context.Context, j *job.Job[tasks.LikeArgs]) error {
	return pds.Classify(h.work(ctx, j))
}

func (h *Like) work(ctx context.Context, j *job.Job[tasks.LikeArgs]) error {
	a := j.Args
	sess, err := h.session(ctx, a.SessionID, "")
	if err != nil {
		return err
	}
	like, err := h.store.GetLike(ctx, a.LikeID)
	if errors.Is(err, store.ErrNotFound) {
		n, err := h.removeOrphans(ctx, sess, a)
		if err != nil {
			return err
		}
		h.log.Info("like: removed before its record was written; nothing left on the PDS", "like_id", a.LikeID, "deleted", n)
		h.setResult(j.Task, map[string]any{"skipped": "like was removed", "deleted_records": n})
		return nil
	}
	if err != nil {
		return fmt.Errorf("like %d: %w", a.LikeID, err)
	}
	if like.UserDID != sess.DID() {
		return job.Permanent(fmt.Errorf("like %d belongs to %s, not the session's user %s", like.ID, like.UserDID, sess.DID()))
	}

	rkey := storedRecordKey(sess, like.RecordURI, h.col.Like)
	if rkey == "" {
		rkey = LikeRecordKey(like)
	}
	rec := pds.LikeRecord{Subject: pds.StrongRef{URI: a.SubjectURI, CID: a.SubjectCID}, CreatedAt: pds.Datetime(like.CreatedAt)}
	ref, err := sess.PutRecord(ctx, h.col.Like, rkey, rec, pds.Swap{})
	if err != nil {
		return err
	}
	if err := h.store.SetLikeRecord(ctx, like.ID, ref.URI); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("like %d: save record URI: %w", like.ID, err)
	}
	// Unliked while we wrote? Then the record we just made is an orphan.
	if _, err := h.store.GetLike(ctx, like.ID); errors.Is(err, store.ErrNotFound) {
		if err := sess.DeleteRecord(ctx, h.col.Like, rkey); err != nil {
			return err
		}
		h.log.Info("like: removed while its record was written; record deleted", "like_id", like.ID, "uri", ref.URI)
		h.setResult(j.Task, map[string]any{"skipped": "like was removed", "deleted_records": 1})
		return nil
	} else if err != nil {
		return fmt.Errorf("like %d: %w", like.ID, err)
	}
	h.setResult(j.Task, map[string]any{"uri": ref.URI, "cid": ref.CID})
	return nil
}

// removeOrphans deletes like records an earlier attempt of this task may
// have written for a like row that is now gone. The row (and so its record
// key) is unknown now, but such a record likes the task's subject and its
// key's clock ID is the like ID (mod 1024); a record of a like the user
// still has (a re-like) is never touched.
func (h *Like) removeOrphans(ctx context.Context, sess *pds.Session, a tasks.LikeArgs) (int, error) {
	live, err := h.store.ListUserLikes(ctx, sess.DID())
	if err != nil {
		return 0, fmt.Errorf("likes of %s: %w", sess.DID(), err)
	}
	keep := make(map[string]bool, len(live))
	for _, l := range live {
		keep[LikeRecordKey(l)] = true
		if k := storedRecordKey(sess, l.RecordURI, h.col.Like); k != "" {
			keep[k] = true
		}
	}
	recs, err := sess.ListRecords(ctx, h.col.Like, 0)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, r := range recs {
		rkey := r.RKey()
		var v pds.LikeRecord
		if keep[rkey] || r.Decode(&v) != nil || v.Subject.URI != a.SubjectURI || !clockMatches(rkey, a.LikeID) {
			continue
		}
		if err := sess.DeleteRecord(ctx, h.col.Like, rkey); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// clockMatches reports whether TID rkey carries id's clock ID, as the keys
// derived from a row (pds.TID(createdAt, id)) do.
func clockMatches(rkey string, id int64) bool {
	c, ok := pds.TIDClock(rkey)
	return ok && c == pds.ClockID(id)
}

// Unlike handles pds:unlike.
type Unlike struct{ pdsBase }

// NewUnlike returns the pds:unlike handler.
func NewUnlike(d Deps) *Unlike { return &Unlike{newPDSBase(d)} }

// Work deletes one like record. A record that is already gone is success.
func (h *Unlike) Work(ctx context.Context, j *job.Job[tasks.UnlikeArgs]) error {
	return pds.Classify(h.work(ctx, j))
}

func (h *Unlike) work(ctx context.Context, j *job.Job[tasks.UnlikeArgs]) error {
	sess, err := h.session(ctx, j.Args.SessionID, "")
	if err != nil {
		return err
	}
	rkey, err := ownRecordKey(sess, j.Args.LikeURI, h.col.Like)
	if err != nil {
		return err
	}
	if err := sess.DeleteRecord(ctx, h.col.Like, rkey); err != nil {
		return err
	}
	h.setResult(j.Task, map[string]any{"deleted": j.Args.LikeURI})
	return nil
}
