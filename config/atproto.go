package config

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// ATProto configures the tasks that act as a user on their PDS (package pds
// and handlers/atproto*.go, teal*.go, likes.go, comments.go, albums.go).
//
// Collections: each plyr.fm collection is PLYR_COLLECTION_PREFIX plus its
// suffix (".like", ".comment", ".list", ".actor.profile") unless its own
// variable overrides it; a staging deployment sets the prefix once
// ("fm.plyr.stg") instead of four variables.
type ATProto struct {
	// TEAL_PLAY_COLLECTION: teal.fm's play (scrobble) collection.
	// Default fm.teal.feed.play.
	TealPlayCollection string `env:"TEAL_PLAY_COLLECTION" envDefault:"fm.teal.feed.play"`
	// TEAL_STATUS_COLLECTION: teal.fm's now-playing status collection
	// (one record, rkey "self"). Default fm.teal.actor.status.
	TealStatusCollection string `env:"TEAL_STATUS_COLLECTION" envDefault:"fm.teal.actor.status"`
	// TEAL_STATUS_TTL: how long after the play the status record expires.
	// Default 10m; allowed 1m..24h.
	TealStatusTTL time.Duration `env:"TEAL_STATUS_TTL" envDefault:"10m"`
	// TEAL_DEDUPE_WINDOW: the same track scrobbled again by one session
	// within this window is the same play. Default 60s; allowed 1s..1h.
	TealDedupeWindow time.Duration `env:"TEAL_DEDUPE_WINDOW" envDefault:"60s"`

	// PLYR_COLLECTION_PREFIX: NSID prefix of plyr.fm's own collections.
	// Default fm.plyr.
	CollectionPrefix string `env:"PLYR_COLLECTION_PREFIX" envDefault:"fm.plyr"`
	// PLYR_LIKE_COLLECTION: likes. Default <prefix>.like (fm.plyr.like).
	LikeCollection string `env:"PLYR_LIKE_COLLECTION"`
	// PLYR_COMMENT_COLLECTION: timed comments. Default <prefix>.comment.
	CommentCollection string `env:"PLYR_COMMENT_COLLECTION"`
	// PLYR_LIST_COLLECTION: albums, playlists and the liked list. Default
	// <prefix>.list.
	ListCollection string `env:"PLYR_LIST_COLLECTION"`
	// PLYR_PROFILE_COLLECTION: the artist profile (rkey "self"). Default
	// <prefix>.actor.profile.
	ProfileCollection string `env:"PLYR_PROFILE_COLLECTION"`

	// PLYR_PUBLIC_URL: plyr.fm's public base URL, used for a scrobble's
	// originUrl (<url>/track/<id>) and musicServiceBaseDomain. Default
	// https://plyr.fm.
	PublicURL string `env:"PLYR_PUBLIC_URL" envDefault:"https://plyr.fm"`

	// PDS_TIMEOUT: the time limit of one XRPC request to a PDS (a task's
	// own timeout bounds the whole task). Default 30s; allowed 1s..5m.
	PDSTimeout time.Duration `env:"PDS_TIMEOUT" envDefault:"30s"`

	// ATPROTO_OAUTH_CLIENT_ID: the OAuth client_id (client metadata URL)
	// used to refresh OAuth sessions whose stored tokens carry none.
	// Default empty (such sessions fail with a clear error at refresh).
	OAuthClientID string `env:"ATPROTO_OAUTH_CLIENT_ID"`
	// ATPROTO_OAUTH_CLIENT_SECRET_KEY: a confidential client's P-256
	// private key (multibase), for client assertions at refresh. Default
	// empty: a public client. Secret: never logged.
	OAuthClientSecretKey string `env:"ATPROTO_OAUTH_CLIENT_SECRET_KEY" secret:"true"`
	// ATPROTO_OAUTH_CLIENT_KEY_ID: the key ID of that key in the client's
	// JWKS. Required with ATPROTO_OAUTH_CLIENT_SECRET_KEY.
	OAuthClientKeyID string `env:"ATPROTO_OAUTH_CLIENT_KEY_ID"`
}

// Collections are the resolved record collections (NSIDs).
type Collections struct {
	TealPlay   string
	TealStatus string
	Like       string
	Comment    string
	List       string
	Profile    string
}

// Collections resolves every collection: the explicit variable when set,
// else PLYR_COLLECTION_PREFIX plus the suffix. Zero-valued fields (a
// Config built in code) fall back to plyr.fm's and teal.fm's defaults.
func (a ATProto) Collections() Collections {
	prefix := strings.TrimSuffix(a.CollectionPrefix, ".")
	if prefix == "" {
		prefix = "fm.plyr"
	}
	pick := func(v, def string) string {
		if v != "" {
			return v
		}
		return def
	}
	return Collections{
		TealPlay:   pick(a.TealPlayCollection, "fm.teal.feed.play"),
		TealStatus: pick(a.TealStatusCollection, "fm.teal.actor.status"),
		Like:       pick(a.LikeCollection, prefix+".like"),
		Comment:    pick(a.CommentCollection, prefix+".comment"),
		List:       pick(a.ListCollection, prefix+".list"),
		Profile:    pick(a.ProfileCollection, prefix+".actor.profile"),
	}
}

// Validate checks every ATProto variable and names the bad one with its
// allowed range. Zero durations mean "use the default" and pass.
func (a ATProto) Validate() error {
	var errs []error
	c := a.Collections()
	for _, n := range []struct{ env, v string }{
		{"TEAL_PLAY_COLLECTION", c.TealPlay},
		{"TEAL_STATUS_COLLECTION", c.TealStatus},
		{"PLYR_LIKE_COLLECTION (or PLYR_COLLECTION_PREFIX)", c.Like},
		{"PLYR_COMMENT_COLLECTION (or PLYR_COLLECTION_PREFIX)", c.Comment},
		{"PLYR_LIST_COLLECTION (or PLYR_COLLECTION_PREFIX)", c.List},
		{"PLYR_PROFILE_COLLECTION (or PLYR_COLLECTION_PREFIX)", c.Profile},
	} {
		if !validNSID(n.v) {
			errs = append(errs, fmt.Errorf("%s=%q: must be an NSID such as fm.plyr.like (3+ dot-separated segments of letters, digits and hyphens)", n.env, n.v))
		}
	}
	errs = append(errs,
		durationIn("TEAL_STATUS_TTL", a.TealStatusTTL, time.Minute, 24*time.Hour),
		durationIn("TEAL_DEDUPE_WINDOW", a.TealDedupeWindow, time.Second, time.Hour),
		durationIn("PDS_TIMEOUT", a.PDSTimeout, time.Second, 5*time.Minute),
	)
	if a.PublicURL != "" {
		if u, err := url.Parse(a.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("PLYR_PUBLIC_URL=%q: must be an http(s) URL", a.PublicURL))
		}
	}
	if (a.OAuthClientSecretKey == "") != (a.OAuthClientKeyID == "") {
		errs = append(errs, errors.New("ATPROTO_OAUTH_CLIENT_SECRET_KEY and ATPROTO_OAUTH_CLIENT_KEY_ID must be set together"))
	}
	return errors.Join(errs...)
}

func durationIn(env string, v, lo, hi time.Duration) error {
	if v == 0 || (v >= lo && v <= hi) {
		return nil
	}
	return fmt.Errorf("%s=%s: must be between %s and %s", env, v, lo, hi)
}

// validNSID is a light NSID check: enough to catch typos in configuration.
func validNSID(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) < 3 || len(s) > 317 {
		return false
	}
	for _, p := range parts {
		if p == "" || len(p) > 63 {
			return false
		}
		for _, r := range p {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}
