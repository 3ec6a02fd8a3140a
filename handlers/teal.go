package handlers

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/plyr-fm/plyrtasks/job"
	"github.com/plyr-fm/plyrtasks/pds"
	"github.com/plyr-fm/plyrtasks/tasks"
)

// teal:scrobble (args: tasks.TealScrobbleArgs) writes a teal.fm play record
// and the user's now-playing status.
//
//   - One play per listen: the play's record key is a TID of played_at with
//     the track ID as clock ID, written with putRecord, so a retried or
//     re-sent scrobble overwrites its own record. Without played_at in the
//     payload the handler fixes the play time on the first attempt (in Redis,
//     by task ID) and every retry reuses it. Producers should set played_at.
//   - The same track scrobbled again by one session within
//     TEAL_DEDUPE_WINDOW (60 s) of a play's time is that play: the first one
//     claims a Redis key per session and track holding its record key, and
//     a later scrobble whose play time is within the window of the claimed
//     one is skipped (success, result "duplicate_of"). The tasks' own
//     uniqueness (60 s per session and track) stops most such duplicates
//     before they are queued; this catches the rest (a re-send after the
//     first finished, the in-process fallback). Without Redis (Deps.Redis
//     nil) only the deterministic key and the tasks' uniqueness apply.
//   - The status record (rkey "self") expires TEAL_STATUS_TTL (10 min) after
//     the play. It is written only when it would not go back in time: an
//     old play retried late leaves a newer status alone, and an already
//     expired one is not written.
//   - Consent: the user's teal scrobbling preference is read when the task
//     runs. plyr.fm enqueues only while it is on, but a user who turned it
//     off since then is not scrobbled: the task succeeds with result
//     "skipped" and writes nothing.

// TealScrobble handles teal:scrobble.
type TealScrobble struct{ pdsBase }

// NewTealScrobble returns the teal:scrobble handler.
func NewTealScrobble(d Deps) *TealScrobble { return &TealScrobble{newPDSBase(d)} }

// Work runs one scrobble.
func (h *TealScrobble) Work(ctx context.Context, j *job.Job[tasks.TealScrobbleArgs]) error {
	return pds.Classify(h.work(ctx, j))
}

func (h *TealScrobble) work(ctx context.Context, j *job.Job[tasks.TealScrobbleArgs]) error {
	a := j.Args
	sess, err := h.session(ctx, a.SessionID, "")
	if err != nil {
		return err
	}
	prefs, err := h.store.GetPreferences(ctx, sess.DID())
	if err != nil {
		return fmt.Errorf("preferences of %s: %w", sess.DID(), err)
	}
	if !prefs.TealScrobbling {
		h.log.Info("teal: scrobbling is off for this user; nothing written", "did", sess.DID(), "track_id", a.TrackID)
		h.setResult(j.Task, map[string]any{"skipped": "teal scrobbling is off"})
		return nil
	}

	playedAt, err := h.playedAt(ctx, j)
	if err != nil {
		return err
	}
	rkey := pds.TID(playedAt, a.TrackID)
	if dup, err := h.claimPlay(ctx, a.SessionID, a.TrackID, rkey, playedAt); err != nil {
		return err
	} else if dup != "" {
		uri := "at://" + sess.DID() + "/" + h.col.TealPlay + "/" + dup
		h.log.Info("teal: same track scrobbled again within the dedupe window; one play", "did", sess.DID(), "track_id", a.TrackID, "play", uri)
		h.setResult(j.Task, map[string]any{"duplicate_of": uri})
		return nil
	}

	view := h.playView(a, playedAt)
	play, err := sess.PutRecord(ctx, h.col.TealPlay, rkey, pds.PlayRecord{PlayView: view}, pds.Swap{})
	if err != nil {
		return err
	}
	status, err := h.putStatus(ctx, sess, view, playedAt)
	if err != nil {
		return err
	}
	h.setResult(j.Task, map[string]any{"play_uri": play.URI, "play_cid": play.CID, "status": status})
	return nil
}

// playedAtTTL keeps a task's fixed play time for longer than its retries
// can last.
const playedAtTTL = 7 * 24 * time.Hour

// playedAt is the payload's played_at, or the time of the task's first
// attempt, kept in Redis by task ID so that retries reuse it (and thus the
// record key). Without Redis or a task ID (an in-process run, which is not
// retried) it is now.
func (h *TealScrobble) playedAt(ctx context.Context, j *job.Job[tasks.TealScrobbleArgs]) (time.Time, error) {
	if j.Args.PlayedAt != nil {
		return j.Args.PlayedAt.UTC(), nil
	}
	now := time.Now().UTC()
	if h.redis == nil || j.Task.ID == "" {
		return now, nil
	}
	key := h.ns + ":teal:played-at:" + j.Task.ID
	if err := h.redis.SetNX(ctx, key, now.Format(time.RFC3339Nano), playedAtTTL).Err(); err != nil {
		return time.Time{}, fmt.Errorf("teal: fix play time: %w", err)
	}
	v, err := h.redis.Get(ctx, key).Result()
	if err != nil {
		return time.Time{}, fmt.Errorf("teal: read play time: %w", err)
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("teal: stored play time %q: %w", v, err)
	}
	return t, nil
}

// claimPlay claims the (session, track) play slot for the play with record
// key rkey at playedAt. It returns the record key of an earlier play of the
// same track within the dedupe window (a duplicate: write nothing), or ""
// when this play may be written: the slot was free, is already ours (a
// retry), or holds a play outside the window (then it becomes ours).
//
// The slot outlives the window (claimTTL) because plays are compared by
// play time, not by when their tasks run: a backlog of plays minutes apart
// is not collapsed into one.
func (h *TealScrobble) claimPlay(ctx context.Context, sessionID string, trackID int64, rkey string, playedAt time.Time) (string, error) {
	if h.redis == nil {
		return "", nil
	}
	key := fmt.Sprintf("%s:teal:play:%s:%d", h.ns, sessionID, trackID)
	ttl := max(10*h.cfg.TealDedupeWindow, 10*time.Minute)
	for range 3 {
		ok, err := h.redis.SetNX(ctx, key, rkey, ttl).Result()
		if err != nil {
			return "", fmt.Errorf("teal: claim play: %w", err)
		}
		if ok {
			return "", nil
		}
		held, err := h.redis.Get(ctx, key).Result()
		if errors.Is(err, redis.Nil) {
			continue // expired between the two calls
		}
		if err != nil {
			return "", fmt.Errorf("teal: read play claim: %w", err)
		}
		if held == rkey {
			return "", nil
		}
		heldAt, err := pds.TIDTime(held)
		if err == nil && absDuration(playedAt.Sub(heldAt)) < h.cfg.TealDedupeWindow {
			return held, nil
		}
		if err := h.redis.Set(ctx, key, rkey, ttl).Err(); err != nil {
			return "", fmt.Errorf("teal: claim play: %w", err)
		}
		return "", nil
	}
	return "", errors.New("teal: play claim kept expiring; retrying later")
}

// playView is the play as teal.fm's lexicon spells it.
func (h *TealScrobble) playView(a tasks.TealScrobbleArgs, playedAt time.Time) pds.PlayView {
	v := pds.PlayView{
		TrackName:             a.TrackTitle,
		Artists:               []pds.PlayArtist{{ArtistName: a.ArtistName}},
		PlayedTime:            pds.Datetime(playedAt),
		OriginURL:             fmt.Sprintf("%s/track/%d", h.cfg.PublicURL, a.TrackID),
		SubmissionClientAgent: "plyr.fm/1.0",
	}
	if u, err := url.Parse(h.cfg.PublicURL); err == nil {
		v.MusicServiceBaseDomain = u.Hostname()
	}
	if a.Duration != nil && *a.Duration > 0 {
		d := *a.Duration
		v.Duration = &d
	}
	if a.AlbumName != nil && *a.AlbumName != "" {
		v.ReleaseName = *a.AlbumName
	}
	return v
}

// putStatus sets the user's now-playing status to this play unless that
// would go back in time. It returns what it did: "written", "expired" (the
// play is older than the status TTL) or "newer-status-kept".
func (h *TealScrobble) putStatus(ctx context.Context, sess *pds.Session, view pds.PlayView, playedAt time.Time) (string, error) {
	expiry := playedAt.Add(h.cfg.TealStatusTTL)
	if !expiry.After(time.Now()) {
		return "expired", nil
	}
	next := pds.StatusRecord{Time: pds.Datetime(playedAt), Expiry: pds.Datetime(expiry), Item: view}
	for range maxSwapAttempts {
		swap := pds.IfMissing()
		rec, err := sess.GetRecord(ctx, h.col.TealStatus, "self")
		switch {
		case errors.Is(err, pds.ErrRecordNotFound):
		case err != nil:
			return "", err
		default:
			swap = pds.IfCID(rec.CID)
			var cur pds.StatusRecord
			if rec.Decode(&cur) == nil {
				if t, err := pds.ParseDatetime(cur.Time); err == nil && t.After(playedAt) {
					return "newer-status-kept", nil
				}
			}
		}
		_, err = sess.PutRecord(ctx, h.col.TealStatus, "self", next, swap)
		if pds.IsInvalidSwap(err) {
			continue
		}
		if err != nil {
			return "", err
		}
		return "written", nil
	}
	return "", fmt.Errorf("teal: status record changed %d times while being written; retrying later", maxSwapAttempts)
}

func absDuration(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}
