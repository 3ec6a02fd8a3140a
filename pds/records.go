package pds

import (
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
)

// TID returns the record key for time t and clock ID clock (taken mod 1024):
// a timestamp identifier, so the same (t, clock) always gives the same key.
// Deterministic keys are what make a retried or re-sent write land on the
// record an earlier attempt made instead of a second one.
func TID(t time.Time, clock int64) string {
	return syntax.NewTIDFromTime(t, ClockID(clock)).String()
}

// ClockID is the TID clock ID TID uses for clock: clock mod 1024.
func ClockID(clock int64) uint { return uint(uint64(clock) % 1024) }

// TIDClock returns the clock ID a TID record key carries; false when rkey
// is not a TID.
func TIDClock(rkey string) (uint, bool) {
	t, err := syntax.ParseTID(rkey)
	if err != nil {
		return 0, false
	}
	return t.ClockID(), true
}

// TIDTime returns the time a TID record key encodes.
func TIDTime(rkey string) (time.Time, error) {
	t, err := syntax.ParseTID(rkey)
	if err != nil {
		return time.Time{}, err
	}
	return t.Time(), nil
}

// Datetime formats t as an ATProto datetime (UTC, millisecond precision).
func Datetime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

// ParseDatetime parses an ATProto datetime (RFC 3339).
func ParseDatetime(s string) (time.Time, error) {
	return time.Parse(time.RFC3339Nano, s)
}

// StrongRef is com.atproto.repo.strongRef: a record's URI and CID.
type StrongRef struct {
	URI string `json:"uri"`
	CID string `json:"cid"`
}

// LikeRecord is fm.plyr.like: a like of a track.
type LikeRecord struct {
	Type      string    `json:"$type"`
	Subject   StrongRef `json:"subject"`
	CreatedAt string    `json:"createdAt"`
}

// CommentRecord is fm.plyr.comment: a comment at a playback position.
type CommentRecord struct {
	Type        string    `json:"$type"`
	Subject     StrongRef `json:"subject"`
	Text        string    `json:"text"`
	TimestampMs int64     `json:"timestampMs"`
	CreatedAt   string    `json:"createdAt"`
	UpdatedAt   string    `json:"updatedAt,omitempty"`
}

// ListItem is one entry of a list.
type ListItem struct {
	Subject StrongRef `json:"subject"`
}

// List types plyr.fm uses (fm.plyr.list's listType known values).
const (
	ListTypeAlbum    = "album"
	ListTypePlaylist = "playlist"
	ListTypeLiked    = "liked"
)

// ListRecord is fm.plyr.list: an ordered list of records (an album, a
// playlist, the liked tracks).
type ListRecord struct {
	Type      string     `json:"$type"`
	Name      string     `json:"name,omitempty"`
	ListType  string     `json:"listType,omitempty"`
	Items     []ListItem `json:"items"`
	CreatedAt string     `json:"createdAt"`
	UpdatedAt string     `json:"updatedAt,omitempty"`
}

// SameContent reports whether l and o list the same items under the same
// name and type (timestamps aside): nothing to write.
func (l ListRecord) SameContent(o ListRecord) bool {
	if l.Name != o.Name || l.ListType != o.ListType || len(l.Items) != len(o.Items) {
		return false
	}
	for i := range l.Items {
		if l.Items[i] != o.Items[i] {
			return false
		}
	}
	return true
}

// PlayArtist is an artist credit of a teal.fm play.
type PlayArtist struct {
	ArtistName string `json:"artistName"`
}

// PlayView is the body of a teal.fm play: what was played, when, where.
type PlayView struct {
	TrackName              string       `json:"trackName"`
	Artists                []PlayArtist `json:"artists"`
	Duration               *int         `json:"duration,omitempty"` // seconds
	ReleaseName            string       `json:"releaseName,omitempty"`
	PlayedTime             string       `json:"playedTime"`
	OriginURL              string       `json:"originUrl,omitempty"`
	MusicServiceBaseDomain string       `json:"musicServiceBaseDomain,omitempty"`
	SubmissionClientAgent  string       `json:"submissionClientAgent,omitempty"`
}

// PlayRecord is fm.teal.feed.play: one scrobble.
type PlayRecord struct {
	Type string `json:"$type"`
	PlayView
}

// StatusRecord is fm.teal.actor.status (rkey "self"): what the user is
// playing now, until Expiry.
type StatusRecord struct {
	Type   string   `json:"$type"`
	Time   string   `json:"time"`
	Expiry string   `json:"expiry"`
	Item   PlayView `json:"item"`
}

// ProfileRecord is fm.plyr.actor.profile (rkey "self").
type ProfileRecord struct {
	Type      string `json:"$type"`
	Bio       string `json:"bio,omitempty"`
	Avatar    string `json:"avatar,omitempty"`
	CreatedAt string `json:"createdAt"`
	UpdatedAt string `json:"updatedAt,omitempty"`
}
