package handlers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/plyr-fm/plyrtasks/job"
	"github.com/plyr-fm/plyrtasks/pds"
	"github.com/plyr-fm/plyrtasks/store"
	"github.com/plyr-fm/plyrtasks/tasks"
)

// pds:comment-create, pds:comment-update and pds:comment-delete (args:
// tasks.CommentCreateArgs, CommentUpdateArgs, CommentDeleteArgs) keep a
// comment row's fm.plyr.comment record.
//
//   - Create writes at CommentRecordKey(row) only if no record is there
//     (swapRecord null): a retry finds its own record and succeeds, and a
//     create retried after an update never puts the old text back. The row
//     gets the record URI. A comment removed before (or while) the task ran
//     leaves nothing behind, as likes do.
//   - Update rewrites text and position, keeps the record's createdAt (the
//     payload's created_at when there is no record yet) and sets updatedAt.
//     It writes nothing for a comment that was removed, so a late update
//     never brings a deleted comment back.
//   - Delete removes the record; one that is already gone is success.
//
// Comment text is user content: it is written to the PDS and never logged.

// CommentRecordKey is the record key of comment's fm.plyr.comment record.
func CommentRecordKey(c store.Comment) string { return rowRecordKey(c.CreatedAt, c.ID) }

// CommentCreate handles pds:comment-create.
type CommentCreate struct{ pdsBase }

// NewCommentCreate returns the pds:comment-create handler.
func NewCommentCreate(d Deps) *CommentCreate { return &CommentCreate{newPDSBase(d)} }

// Work writes one comment record.
func (h *CommentCreate) Work(ctx context.Context, j *job.Job[tasks.CommentCreateArgs]) error {
	return pds.Classify(h.work(ctx, j))
}

func (h *CommentCreate) work(ctx context.Context, j *job.Job[tasks.CommentCreateArgs]) error {
	a := j.Args
	sess, err := h.session(ctx, a.SessionID, "")
	if err != nil {
		return err
	}
	c, err := h.store.GetComment(ctx, a.CommentID)
	if errors.Is(err, store.ErrNotFound) {
		n, err := h.removeOrphans(ctx, sess, a)
		if err != nil {
			return err
		}
		h.log.Info("comment: removed before its record was written; nothing left on the PDS", "comment_id", a.CommentID, "deleted", n)
		h.setResult(j.Task, map[string]any{"skipped": "comment was removed", "deleted_records": n})
		return nil
	}
	if err != nil {
		return fmt.Errorf("comment %d: %w", a.CommentID, err)
	}
	if c.UserDID != sess.DID() {
		return job.Permanent(fmt.Errorf("comment %d belongs to %s, not the session's user %s", c.ID, c.UserDID, sess.DID()))
	}

	rkey := storedRecordKey(sess, c.RecordURI, h.col.Comment)
	if rkey == "" {
		rkey = CommentRecordKey(c)
	}
	rec := pds.CommentRecord{
		Subject:     pds.StrongRef{URI: a.SubjectURI, CID: a.SubjectCID},
		Text:        a.Text,
		TimestampMs: a.TimestampMS,
		CreatedAt:   pds.Datetime(c.CreatedAt),
	}
	ref, err := sess.PutRecord(ctx, h.col.Comment, rkey, rec, pds.IfMissing())
	if pds.IsInvalidSwap(err) {
		// Already there: written by an earlier attempt or a later update.
		r, gerr := sess.GetRecord(ctx, h.col.Comment, rkey)
		if gerr != nil {
			return gerr
		}
		ref, err = pds.Ref{URI: r.URI, CID: r.CID}, nil
	}
	if err != nil {
		return err
	}
	if err := h.store.SetCommentRecord(ctx, c.ID, ref.URI); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("comment %d: save record URI: %w", c.ID, err)
	}
	if _, err := h.store.GetComment(ctx, c.ID); errors.Is(err, store.ErrNotFound) {
		if err := sess.DeleteRecord(ctx, h.col.Comment, rkey); err != nil {
			return err
		}
		h.log.Info("comment: removed while its record was written; record deleted", "comment_id", c.ID, "uri", ref.URI)
		h.setResult(j.Task, map[string]any{"skipped": "comment was removed", "deleted_records": 1})
		return nil
	} else if err != nil {
		return fmt.Errorf("comment %d: %w", c.ID, err)
	}
	h.setResult(j.Task, map[string]any{"uri": ref.URI, "cid": ref.CID})
	return nil
}

// removeOrphans deletes a record an earlier attempt wrote for a comment row
// that is now gone: same subject, text and position, and a key whose clock
// ID is the comment ID (mod 1024).
func (h *CommentCreate) removeOrphans(ctx context.Context, sess *pds.Session, a tasks.CommentCreateArgs) (int, error) {
	recs, err := sess.ListRecords(ctx, h.col.Comment, 0)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, r := range recs {
		rkey := r.RKey()
		var v pds.CommentRecord
		if r.Decode(&v) != nil || !clockMatches(rkey, a.CommentID) ||
			v.Subject.URI != a.SubjectURI || v.Text != a.Text || v.TimestampMs != a.TimestampMS {
			continue
		}
		if err := sess.DeleteRecord(ctx, h.col.Comment, rkey); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// CommentUpdate handles pds:comment-update.
type CommentUpdate struct{ pdsBase }

// NewCommentUpdate returns the pds:comment-update handler.
func NewCommentUpdate(d Deps) *CommentUpdate { return &CommentUpdate{newPDSBase(d)} }

// Work rewrites one comment record.
func (h *CommentUpdate) Work(ctx context.Context, j *job.Job[tasks.CommentUpdateArgs]) error {
	return pds.Classify(h.work(ctx, j))
}

func (h *CommentUpdate) work(ctx context.Context, j *job.Job[tasks.CommentUpdateArgs]) error {
	a := j.Args
	sess, err := h.session(ctx, a.SessionID, "")
	if err != nil {
		return err
	}
	rkey, err := ownRecordKey(sess, a.CommentURI, h.col.Comment)
	if err != nil {
		return err
	}
	c, err := h.store.GetComment(ctx, a.CommentID)
	if errors.Is(err, store.ErrNotFound) {
		h.log.Info("comment: removed before its update ran; nothing written", "comment_id", a.CommentID)
		h.setResult(j.Task, map[string]any{"skipped": "comment was removed"})
		return nil
	}
	if err != nil {
		return fmt.Errorf("comment %d: %w", a.CommentID, err)
	}
	if c.UserDID != sess.DID() {
		return job.Permanent(fmt.Errorf("comment %d belongs to %s, not the session's user %s", c.ID, c.UserDID, sess.DID()))
	}

	createdAt := pds.Datetime(a.CreatedAt)
	rec, err := sess.GetRecord(ctx, h.col.Comment, rkey)
	switch {
	case errors.Is(err, pds.ErrRecordNotFound):
	case err != nil:
		return err
	default:
		var cur pds.CommentRecord
		if rec.Decode(&cur) == nil && cur.CreatedAt != "" {
			createdAt = cur.CreatedAt
		}
	}
	next := pds.CommentRecord{
		Subject:     pds.StrongRef{URI: a.SubjectURI, CID: a.SubjectCID},
		Text:        a.Text,
		TimestampMs: a.TimestampMS,
		CreatedAt:   createdAt,
		UpdatedAt:   pds.Datetime(time.Now()),
	}
	ref, err := sess.PutRecord(ctx, h.col.Comment, rkey, next, pds.Swap{})
	if err != nil {
		return err
	}
	h.setResult(j.Task, map[string]any{"uri": ref.URI, "cid": ref.CID})
	return nil
}

// CommentDelete handles pds:comment-delete.
type CommentDelete struct{ pdsBase }

// NewCommentDelete returns the pds:comment-delete handler.
func NewCommentDelete(d Deps) *CommentDelete { return &CommentDelete{newPDSBase(d)} }

// Work deletes one comment record. A record that is already gone is
// success.
func (h *CommentDelete) Work(ctx context.Context, j *job.Job[tasks.CommentDeleteArgs]) error {
	return pds.Classify(h.work(ctx, j))
}

func (h *CommentDelete) work(ctx context.Context, j *job.Job[tasks.CommentDeleteArgs]) error {
	sess, err := h.session(ctx, j.Args.SessionID, "")
	if err != nil {
		return err
	}
	rkey, err := ownRecordKey(sess, j.Args.CommentURI, h.col.Comment)
	if err != nil {
		return err
	}
	if err := sess.DeleteRecord(ctx, h.col.Comment, rkey); err != nil {
		return err
	}
	h.setResult(j.Task, map[string]any{"deleted": j.Args.CommentURI})
	return nil
}
