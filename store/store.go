// Package store owns the schema and data access for everything the tasks
// read and write: artists, tracks, albums, likes, comments, user sessions,
// preferences, jobs and copyright scans.
//
// One implementation over database/sql serves both backends: PostgreSQL
// (pgx v5's stdlib driver) in production and embedded SQLite (modernc, pure
// Go) by default. Queries are written once with '?' placeholders and rebound
// for PostgreSQL; migrations live per dialect under migrations/ and run with
// goose at start and from `plyrtasks migrate`. The conformance suite in
// conformance_test.go runs against both; package storetest gives other
// packages' tests a ready store of either kind.
//
// Session tokens are encrypted at rest (AES-256-GCM) with the key from
// SESSION_ENCRYPTION_KEY; without one, sessions cannot be stored.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// ErrNotFound is returned (wrapped) when a row does not exist.
var ErrNotFound = errors.New("not found")

// ErrNoEncryptionKey is returned when a session is stored or read without
// SESSION_ENCRYPTION_KEY configured.
var ErrNoEncryptionKey = errors.New("sessions cannot be stored: set SESSION_ENCRYPTION_KEY (32 random bytes, base64)")

// Artist is a user who publishes tracks.
type Artist struct {
	DID         string
	Handle      string
	DisplayName string
	PDSURL      string
	CreatedAt   time.Time
}

// Track is an uploaded track. FileKey/FileType is the served (transcoded)
// audio in object storage; OriginalKey/OriginalType the lossless original
// when one was uploaded.
type Track struct {
	ID           int64
	ArtistDID    string
	Title        string
	FileKey      string
	FileType     string // extension without dot: "mp3"
	OriginalKey  string
	OriginalType string
	AlbumID      int64 // 0 = none
	RecordURI    string
	RecordCID    string
	CreatedAt    time.Time
}

// Album groups tracks in an order. ListURI/ListCID is its fm.plyr.list record.
type Album struct {
	ID        int64
	ArtistDID string
	Title     string
	TrackIDs  []int64 // album order
	ListURI   string
	ListCID   string
	CreatedAt time.Time
}

// Like is a user's like of a track. RecordURI is set once the fm.plyr.like
// record exists on the user's PDS.
type Like struct {
	ID        int64
	TrackID   int64
	UserDID   string
	RecordURI string
	CreatedAt time.Time
}

// Comment is a timed comment on a track.
type Comment struct {
	ID          int64
	TrackID     int64
	UserDID     string
	Text        string
	TimestampMS int64
	RecordURI   string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// SessionKind says how a session authenticates.
type SessionKind string

const (
	SessionOAuth    SessionKind = "oauth"    // DPoP-bound access + refresh tokens
	SessionPassword SessionKind = "password" // createSession with a password or app password
)

// SessionTokens is the secret part of a session, encrypted at rest.
type SessionTokens struct {
	AccessJWT  string `json:"access_jwt"`
	RefreshJWT string `json:"refresh_jwt"`
	// OAuth only.
	DPoPKey       string `json:"dpop_key,omitempty"` // private key, multibase or JWK JSON
	DPoPNonce     string `json:"dpop_nonce,omitempty"`
	AuthServer    string `json:"auth_server,omitempty"` // issuer URL
	ClientID      string `json:"client_id,omitempty"`
	TokenEndpoint string `json:"token_endpoint,omitempty"`
}

// Session is a user's authenticated session on their PDS, loaded by ID.
type Session struct {
	ID        string
	DID       string
	Handle    string
	PDSURL    string
	Kind      SessionKind
	Tokens    SessionTokens // decrypted
	ExpiresAt time.Time     // access token expiry, zero if unknown
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Preferences are a user's settings the tasks read and write.
type Preferences struct {
	DID            string
	LikedListURI   string
	LikedListCID   string
	TealScrobbling bool
	ProfileCID     string // CID of the last profile record written (change detection)
}

// JobStatus is the lifecycle of a job row.
type JobStatus string

const (
	JobPending   JobStatus = "pending"
	JobRunning   JobStatus = "running"
	JobDone      JobStatus = "done"
	JobFailed    JobStatus = "failed"
	JobCancelled JobStatus = "cancelled"
)

// Active reports whether the job is queued or running.
func (s JobStatus) Active() bool { return s == JobPending || s == JobRunning }

// Job is a user-visible long-running piece of work (a media export) whose
// progress and result outlive the task.
type Job struct {
	ID          string
	Type        string // task kind, "export:media"
	Status      JobStatus
	OwnerDID    string
	TaskID      string
	Progress    float64 // percent, 0..100
	Phase       string
	Message     string
	Result      json.RawMessage
	Error       string
	CreatedAt   time.Time
	UpdatedAt   time.Time
	CompletedAt time.Time // zero until done, failed or cancelled
}

// JobUpdate changes the fields that are non-nil.
type JobUpdate struct {
	Status   *JobStatus
	TaskID   *string
	Progress *float64
	Phase    *string
	Message  *string
	Result   json.RawMessage
	Error    *string
}

// ScanStatus is the outcome of a copyright scan.
type ScanStatus string

const (
	ScanClean   ScanStatus = "clean"
	ScanFlagged ScanStatus = "flagged"
	ScanFailed  ScanStatus = "failed"
	ScanSkipped ScanStatus = "skipped"
)

// CopyrightScan is the current scan of one track (a rescan replaces it).
type CopyrightScan struct {
	TrackID            int64
	Status             ScanStatus
	Flagged            bool
	DominantMatchPct   float64
	DominantMatch      string
	SustainedSongCount int
	HighestScore       float64
	Matches            json.RawMessage
	Raw                json.RawMessage
	Error              string
	ScannedAt          time.Time
	ResolvedAt         time.Time // zero unless a flag was cleared by negation
}

// FlaggedTrack is a flagged track with a record URI (for resolution sync).
type FlaggedTrack struct {
	TrackID   int64
	RecordURI string
}

// Store is everything the tasks need from the database.
type Store interface {
	Migrate(ctx context.Context) error
	Ping(ctx context.Context) error
	Close() error
	// Dialect is "postgres" or "sqlite".
	Dialect() string

	// Artists and tracks.
	UpsertArtist(ctx context.Context, a Artist) error
	GetArtist(ctx context.Context, did string) (Artist, error)
	CreateTrack(ctx context.Context, t Track) (Track, error)
	GetTrack(ctx context.Context, id int64) (Track, error)
	// ListArtistTracks returns the artist's tracks in creation order.
	ListArtistTracks(ctx context.Context, artistDID string) ([]Track, error)
	SetTrackRecord(ctx context.Context, id int64, uri, cid string) error

	// Albums.
	CreateAlbum(ctx context.Context, a Album) (Album, error)
	GetAlbum(ctx context.Context, id int64) (Album, error)
	ListArtistAlbums(ctx context.Context, artistDID string) ([]Album, error)
	SetAlbumTracks(ctx context.Context, id int64, trackIDs []int64) error
	SetAlbumList(ctx context.Context, id int64, uri, cid string) error

	// Likes: GetLike returns ErrNotFound once the like was removed.
	CreateLike(ctx context.Context, l Like) (Like, error)
	GetLike(ctx context.Context, id int64) (Like, error)
	DeleteLike(ctx context.Context, id int64) error
	SetLikeRecord(ctx context.Context, id int64, uri string) error
	// ListUserLikes returns the user's likes, newest first.
	ListUserLikes(ctx context.Context, userDID string) ([]Like, error)

	// Comments.
	CreateComment(ctx context.Context, c Comment) (Comment, error)
	GetComment(ctx context.Context, id int64) (Comment, error)
	SetCommentRecord(ctx context.Context, id int64, uri string) error
	DeleteComment(ctx context.Context, id int64) error

	// Preferences: GetPreferences returns defaults (scrobbling off) when the
	// user has none.
	GetPreferences(ctx context.Context, did string) (Preferences, error)
	SavePreferences(ctx context.Context, p Preferences) error

	// Sessions: tokens are encrypted at rest; ErrNoEncryptionKey without a key.
	SaveSession(ctx context.Context, s Session) error
	GetSession(ctx context.Context, id string) (Session, error)
	ListSessions(ctx context.Context) ([]Session, error) // tokens left empty
	DeleteSession(ctx context.Context, id string) error
	// UpdateSessionTokens replaces the tokens only if the stored refresh
	// token is still oldRefresh (compare-and-swap; false when it was not).
	UpdateSessionTokens(ctx context.Context, id, oldRefresh string, t SessionTokens, expiresAt time.Time) (bool, error)

	// Jobs.
	// CreateJobOnce inserts j unless a job of the same type and owner is
	// pending or running; then it returns that job and created=false.
	CreateJobOnce(ctx context.Context, j Job) (job Job, created bool, err error)
	GetJob(ctx context.Context, id string) (Job, error)
	UpdateJob(ctx context.Context, id string, u JobUpdate) (Job, error)
	ListJobs(ctx context.Context, jobType, ownerDID string, limit int) ([]Job, error)

	// Copyright scans.
	SaveScan(ctx context.Context, s CopyrightScan) error // one current scan per track
	GetScan(ctx context.Context, trackID int64) (CopyrightScan, error)
	ListFlaggedWithRecord(ctx context.Context) ([]FlaggedTrack, error)
	// ClearFlags unflags the given tracks' scans, recording resolvedAt, and
	// returns how many were flagged. Status stays as the scan recorded it.
	ClearFlags(ctx context.Context, trackIDs []int64, resolvedAt time.Time) (int, error)
	// Report state of flagged scans (copyright_reports.go, issue 5).
	CopyrightReports
}
