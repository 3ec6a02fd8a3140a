package tasks

import (
	"fmt"
	"time"
)

// All returns the catalog of every task type plyrtasks declares. To add a
// type, add one Declare line here.
func All() *Catalog {
	return NewCatalog(
		Declare[CopyrightScanArgs](),
		periodic(Declare[CopyrightSyncResolutionsArgs](), 5*time.Minute),
		Declare[MediaExportArgs](),
		Declare[ATProtoSyncArgs](),
		Declare[TealScrobbleArgs](),
		Declare[AlbumListSyncArgs](),
		Declare[LikeArgs](),
		Declare[UnlikeArgs](),
		Declare[CommentCreateArgs](),
		Declare[CommentUpdateArgs](),
		Declare[CommentDeleteArgs](),
	)
}

// --- copyright -------------------------------------------------------------

// CopyrightScanArgs asks for a copyright scan of an uploaded track.
type CopyrightScanArgs struct {
	TrackID  int64  `json:"track_id"`
	AudioURL string `json:"audio_url"`
}

func (CopyrightScanArgs) Kind() string { return "copyright:scan" }

// InsertOpts: scans are slow (minutes) and unique per track while queued or
// running; a rescan after the task finished is allowed.
func (CopyrightScanArgs) InsertOpts() Opts {
	return Opts{Queue: QueueDefault, MaxRetry: 8, Timeout: 15 * time.Minute, UniqueFor: 2 * time.Hour}
}

func (a CopyrightScanArgs) UniqueKey() string { return fmt.Sprint(a.TrackID) }

func (a CopyrightScanArgs) Validate() error {
	var c check
	c.positive("track_id", a.TrackID)
	c.httpURL("audio_url", a.AudioURL)
	c.maxLen("audio_url", a.AudioURL, 2048)
	return c.err()
}

// CopyrightSyncResolutionsArgs is the periodic tick that clears flags the
// labeler explicitly negated.
type CopyrightSyncResolutionsArgs struct{}

func (CopyrightSyncResolutionsArgs) Kind() string { return "copyright:sync-resolutions" }

func (CopyrightSyncResolutionsArgs) InsertOpts() Opts {
	return Opts{Queue: QueueDefault, MaxRetry: NoRetry, Timeout: 4 * time.Minute, Retention: time.Hour}
}

// --- export ----------------------------------------------------------------

// MediaExportArgs asks for a zip of every track an artist published.
type MediaExportArgs struct {
	ExportID  string `json:"export_id"`
	ArtistDID string `json:"artist_did"`
}

func (MediaExportArgs) Kind() string { return "export:media" }

// InsertOpts: one export per artist at a time; long timeout (gigabytes).
func (MediaExportArgs) InsertOpts() Opts {
	return Opts{Queue: QueueBulk, MaxRetry: 3, Timeout: 2 * time.Hour, UniqueFor: 3 * time.Hour, Retention: 7 * 24 * time.Hour}
}

func (a MediaExportArgs) UniqueKey() string { return a.ArtistDID }

// TaskID: the export ID names the task too.
func (a MediaExportArgs) TaskID() string { return a.ExportID }

func (a MediaExportArgs) Validate() error {
	var c check
	c.required("export_id", a.ExportID)
	c.maxLen("export_id", a.ExportID, 128)
	c.slug("export_id", a.ExportID)
	c.did("artist_did", a.ArtistDID)
	return c.err()
}

// --- atproto ---------------------------------------------------------------

// ATProtoSyncArgs syncs a user's records to their PDS on login.
type ATProtoSyncArgs struct {
	SessionID string `json:"session_id"`
	DID       string `json:"did"`
}

func (ATProtoSyncArgs) Kind() string { return "atproto:sync" }

// InsertOpts: unique per user while one is queued or running.
func (ATProtoSyncArgs) InsertOpts() Opts {
	return Opts{Queue: QueueDefault, MaxRetry: 8, Timeout: 10 * time.Minute, UniqueFor: time.Hour}
}

func (a ATProtoSyncArgs) UniqueKey() string { return a.DID }

func (a ATProtoSyncArgs) Validate() error {
	var c check
	c.sessionID(a.SessionID)
	c.did("did", a.DID)
	return c.err()
}

// TealScrobbleArgs records a play on teal.fm.
type TealScrobbleArgs struct {
	SessionID  string     `json:"session_id"`
	TrackID    int64      `json:"track_id"`
	TrackTitle string     `json:"track_title"`
	ArtistName string     `json:"artist_name"`
	Duration   *int       `json:"duration,omitempty"`
	AlbumName  *string    `json:"album_name,omitempty"`
	PlayedAt   *time.Time `json:"played_at,omitempty"`
}

func (TealScrobbleArgs) Kind() string { return "teal:scrobble" }

// InsertOpts: the same track scrobbled twice by one session within 60 s is
// one play.
func (TealScrobbleArgs) InsertOpts() Opts {
	return Opts{Queue: QueueCritical, MaxRetry: 8, Timeout: time.Minute, UniqueFor: time.Minute}
}

func (a TealScrobbleArgs) UniqueKey() string { return fmt.Sprintf("%s:%d", a.SessionID, a.TrackID) }

func (a TealScrobbleArgs) Validate() error {
	var c check
	c.sessionID(a.SessionID)
	c.positive("track_id", a.TrackID)
	c.required("track_title", a.TrackTitle)
	c.maxLen("track_title", a.TrackTitle, 512)
	c.required("artist_name", a.ArtistName)
	c.maxLen("artist_name", a.ArtistName, 512)
	if a.Duration != nil && *a.Duration < 0 {
		c.add("duration", "must not be negative")
	}
	if a.AlbumName != nil {
		c.maxLen("album_name", *a.AlbumName, 512)
	}
	return c.err()
}

// AlbumListSyncArgs writes an album's list record.
type AlbumListSyncArgs struct {
	SessionID string `json:"session_id"`
	AlbumID   int64  `json:"album_id"`
}

func (AlbumListSyncArgs) Kind() string { return "album:list-sync" }

func (AlbumListSyncArgs) InsertOpts() Opts {
	return Opts{Queue: QueueDefault, MaxRetry: 8, Timeout: 5 * time.Minute, UniqueFor: 30 * time.Minute}
}

func (a AlbumListSyncArgs) UniqueKey() string { return fmt.Sprint(a.AlbumID) }

func (a AlbumListSyncArgs) Validate() error {
	var c check
	c.sessionID(a.SessionID)
	c.positive("album_id", a.AlbumID)
	return c.err()
}

// LikeArgs writes a like record for a like row.
type LikeArgs struct {
	SessionID  string `json:"session_id"`
	LikeID     int64  `json:"like_id"`
	SubjectURI string `json:"subject_uri"`
	SubjectCID string `json:"subject_cid"`
}

func (LikeArgs) Kind() string { return "pds:like" }

func (LikeArgs) InsertOpts() Opts {
	return Opts{Queue: QueueCritical, MaxRetry: 10, Timeout: time.Minute}
}

func (a LikeArgs) Validate() error {
	var c check
	c.sessionID(a.SessionID)
	c.positive("like_id", a.LikeID)
	c.atURI("subject_uri", a.SubjectURI)
	c.cid("subject_cid", a.SubjectCID)
	return c.err()
}

// UnlikeArgs deletes a like record.
type UnlikeArgs struct {
	SessionID string `json:"session_id"`
	LikeURI   string `json:"like_uri"`
}

func (UnlikeArgs) Kind() string { return "pds:unlike" }

func (UnlikeArgs) InsertOpts() Opts {
	return Opts{Queue: QueueCritical, MaxRetry: 10, Timeout: time.Minute}
}

func (a UnlikeArgs) Validate() error {
	var c check
	c.sessionID(a.SessionID)
	c.atURI("like_uri", a.LikeURI)
	return c.err()
}

// MaxCommentLength bounds comment text (graphemes are not counted here;
// runes are a safe upper bound for the lexicon's limit).
const MaxCommentLength = 1000

// CommentCreateArgs writes a comment record for a comment row.
type CommentCreateArgs struct {
	SessionID   string `json:"session_id"`
	CommentID   int64  `json:"comment_id"`
	SubjectURI  string `json:"subject_uri"`
	SubjectCID  string `json:"subject_cid"`
	Text        string `json:"text"`
	TimestampMS int64  `json:"timestamp_ms"`
}

func (CommentCreateArgs) Kind() string { return "pds:comment-create" }

func (CommentCreateArgs) InsertOpts() Opts {
	return Opts{Queue: QueueCritical, MaxRetry: 10, Timeout: time.Minute}
}

func (a CommentCreateArgs) Validate() error {
	var c check
	c.sessionID(a.SessionID)
	c.positive("comment_id", a.CommentID)
	c.atURI("subject_uri", a.SubjectURI)
	c.cid("subject_cid", a.SubjectCID)
	c.required("text", a.Text)
	c.maxLen("text", a.Text, MaxCommentLength)
	if a.TimestampMS < 0 {
		c.add("timestamp_ms", "must not be negative")
	}
	return c.err()
}

// CommentUpdateArgs rewrites a comment record's text, keeping createdAt.
type CommentUpdateArgs struct {
	SessionID   string    `json:"session_id"`
	CommentID   int64     `json:"comment_id"`
	CommentURI  string    `json:"comment_uri"`
	SubjectURI  string    `json:"subject_uri"`
	SubjectCID  string    `json:"subject_cid"`
	Text        string    `json:"text"`
	TimestampMS int64     `json:"timestamp_ms"`
	CreatedAt   time.Time `json:"created_at"`
}

func (CommentUpdateArgs) Kind() string { return "pds:comment-update" }

func (CommentUpdateArgs) InsertOpts() Opts {
	return Opts{Queue: QueueCritical, MaxRetry: 10, Timeout: time.Minute}
}

func (a CommentUpdateArgs) Validate() error {
	var c check
	c.sessionID(a.SessionID)
	c.positive("comment_id", a.CommentID)
	c.atURI("comment_uri", a.CommentURI)
	c.atURI("subject_uri", a.SubjectURI)
	c.cid("subject_cid", a.SubjectCID)
	c.required("text", a.Text)
	c.maxLen("text", a.Text, MaxCommentLength)
	if a.TimestampMS < 0 {
		c.add("timestamp_ms", "must not be negative")
	}
	if a.CreatedAt.IsZero() {
		c.add("created_at", "is required (RFC 3339)")
	}
	return c.err()
}

// CommentDeleteArgs deletes a comment record.
type CommentDeleteArgs struct {
	SessionID  string `json:"session_id"`
	CommentURI string `json:"comment_uri"`
}

func (CommentDeleteArgs) Kind() string { return "pds:comment-delete" }

func (CommentDeleteArgs) InsertOpts() Opts {
	return Opts{Queue: QueueCritical, MaxRetry: 10, Timeout: time.Minute}
}

func (a CommentDeleteArgs) Validate() error {
	var c check
	c.sessionID(a.SessionID)
	c.atURI("comment_uri", a.CommentURI)
	return c.err()
}
