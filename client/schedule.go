package client

import (
	"context"
	"time"

	"github.com/plyr-fm/plyrtasks/tasks"
)

// The typed functions below are Enqueue with the type's args spelled out.
// Each validates its arguments, takes the type's defaults from package
// tasks, and accepts Options to override them for the call.

// ScheduleCopyrightScan asks for a copyright scan of an uploaded track. It
// is unique per track while queued or running.
func (c *Client) ScheduleCopyrightScan(ctx context.Context, trackID int64, audioURL string, opts ...Option) (Result, error) {
	return c.Enqueue(ctx, tasks.CopyrightScanArgs{TrackID: trackID, AudioURL: audioURL}, opts...)
}

// ScheduleExport asks for a media export of the artist's tracks under
// export ID exportID (also the task's ID, so a cancel by either finds it).
// It is unique per artist while queued or running: a second request
// returns the first as a Duplicate. The export's job row is recorded when a
// worker starts it; backend code that has the store at hand can use
// export.Service.Request instead, which records it at once so GET
// /v1/exports/{id} answers while the export waits for a worker.
func (c *Client) ScheduleExport(ctx context.Context, exportID, artistDID string, opts ...Option) (Result, error) {
	return c.Enqueue(ctx, tasks.MediaExportArgs{ExportID: exportID, ArtistDID: artistDID}, opts...)
}

// ScheduleATProtoSync syncs a user's records to their PDS (on login),
// acting through session sessionID. It is unique per DID while queued or
// running.
func (c *Client) ScheduleATProtoSync(ctx context.Context, sessionID, did string, opts ...Option) (Result, error) {
	return c.Enqueue(ctx, tasks.ATProtoSyncArgs{SessionID: sessionID, DID: did}, opts...)
}

// ScheduleTealScrobble records a play on teal.fm. The same track scrobbled
// twice by one session within a minute is one play.
//
// An unset PlayedAt becomes now, in the payload: the play's record key is a
// TID of its time and the dedupe window counts from it, so fixing it at
// enqueue keeps both the same on every retry and records when the user
// listened, not when a worker got to the task.
func (c *Client) ScheduleTealScrobble(ctx context.Context, play tasks.TealScrobbleArgs, opts ...Option) (Result, error) {
	if play.PlayedAt == nil {
		// Microseconds: what a TID holds, so the payload is exactly the key.
		now := time.Now().UTC().Truncate(time.Microsecond)
		play.PlayedAt = &now
	}
	return c.Enqueue(ctx, play, opts...)
}

// ScheduleAlbumListSync writes album albumID's list record, acting through
// session sessionID.
func (c *Client) ScheduleAlbumListSync(ctx context.Context, sessionID string, albumID int64, opts ...Option) (Result, error) {
	return c.Enqueue(ctx, tasks.AlbumListSyncArgs{SessionID: sessionID, AlbumID: albumID}, opts...)
}

// ScheduleLike writes the like record of like row likeID for the record
// subjectURI (with its CID subjectCID).
func (c *Client) ScheduleLike(ctx context.Context, sessionID string, likeID int64, subjectURI, subjectCID string, opts ...Option) (Result, error) {
	return c.Enqueue(ctx, tasks.LikeArgs{SessionID: sessionID, LikeID: likeID, SubjectURI: subjectURI, SubjectCID: subjectCID}, opts...)
}

// ScheduleUnlike deletes the like record likeURI.
func (c *Client) ScheduleUnlike(ctx context.Context, sessionID, likeURI string, opts ...Option) (Result, error) {
	return c.Enqueue(ctx, tasks.UnlikeArgs{SessionID: sessionID, LikeURI: likeURI}, opts...)
}

// ScheduleCommentCreate writes the comment record of a comment row.
func (c *Client) ScheduleCommentCreate(ctx context.Context, comment tasks.CommentCreateArgs, opts ...Option) (Result, error) {
	return c.Enqueue(ctx, comment, opts...)
}

// ScheduleCommentUpdate rewrites a comment record's text, keeping its
// createdAt.
func (c *Client) ScheduleCommentUpdate(ctx context.Context, comment tasks.CommentUpdateArgs, opts ...Option) (Result, error) {
	return c.Enqueue(ctx, comment, opts...)
}

// ScheduleCommentDelete deletes the comment record commentURI.
func (c *Client) ScheduleCommentDelete(ctx context.Context, sessionID, commentURI string, opts ...Option) (Result, error) {
	return c.Enqueue(ctx, tasks.CommentDeleteArgs{SessionID: sessionID, CommentURI: commentURI}, opts...)
}
