package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/plyr-fm/plyrtasks/config"
	"github.com/plyr-fm/plyrtasks/job"
	"github.com/plyr-fm/plyrtasks/moderation"
	"github.com/plyr-fm/plyrtasks/store"
	"github.com/plyr-fm/plyrtasks/tasks"
)

// Copyright scanning (issue 5). copyright:scan sends a track's audio URL to
// the moderation service, applies moderation.Rule, stores the scan (one
// current scan per track) and reports a flag to the labeler. The scan is
// saved before the report, so a labeler outage retries only the report: a
// retry whose task already saved the current scan goes straight to it.
// copyright:sync-resolutions (every 5 minutes) clears flags the labeler
// explicitly negated, and re-sends reports that never got through.
//
// Scans are unique per track while queued or running: tasks declares
// CopyrightScanArgs with UniqueFor 2h and UniqueKey track_id.

// ModerationFromConfig builds the moderation client from its settings, or
// returns nil when MODERATION_URL is unset (scans are then recorded as
// skipped).
func ModerationFromConfig(m config.Moderation) (*moderation.Client, error) {
	if !m.Enabled() {
		return nil, nil
	}
	return moderation.New(moderation.Options{
		URL:            m.URL,
		Key:            m.Key,
		Timeout:        m.Timeout,
		LabelerURL:     m.LabelerURL,
		LabelerKey:     m.LabelerKey,
		LabelerTimeout: m.LabelerTimeout,
		Rule:           moderation.Rule{ScoreThreshold: m.ScoreThreshold, MixSongThreshold: m.MixSongThreshold},
		AudioURLs: moderation.GuardOptions{
			AllowedHosts: m.AllowedHosts,
			DevHTTPHosts: m.DevHTTPHosts,
			Preflight:    m.Preflight,
		},
	})
}

// withModeration fills d.Moderation from d.Config when the caller left it
// unset, so that configuring MODERATION_URL is enough to enable scanning.
func withModeration(d Deps) (Deps, error) {
	if d.Moderation != nil || d.Config == nil {
		return d, nil
	}
	c, err := ModerationFromConfig(d.Config.Moderation)
	if err != nil {
		return d, fmt.Errorf("copyright: %w", err)
	}
	d.Moderation = c
	return d, nil
}

func logger(d Deps) *slog.Logger {
	if d.Logger != nil {
		return d.Logger
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// CopyrightScan handles copyright:scan.
type CopyrightScan struct {
	store store.Store
	mod   *moderation.Client // nil: moderation disabled
	log   *slog.Logger
}

// NewCopyrightScan returns the copyright:scan handler.
func NewCopyrightScan(d Deps) *CopyrightScan {
	return &CopyrightScan{store: d.Store, mod: d.Moderation, log: logger(d)}
}

// ScanOutcome is copyright:scan's task result.
type ScanOutcome struct {
	TrackID            int64   `json:"track_id"`
	Status             string  `json:"status"`
	Flagged            bool    `json:"flagged"`
	SelfMatch          bool    `json:"self_match,omitempty"`
	Reason             string  `json:"reason,omitempty"`
	DominantMatchPct   float64 `json:"dominant_match_pct"`
	SustainedSongCount int     `json:"sustained_song_count"`
	// Reported is true once the flag reached the labeler; ReportPending
	// says why it has not yet.
	Reported      bool   `json:"reported,omitempty"`
	ReportPending string `json:"report_pending,omitempty"`
	// Resumed is true when an earlier attempt had saved the scan and this one
	// only reported it.
	Resumed bool `json:"resumed,omitempty"`
}

// Work runs one scan attempt.
func (h *CopyrightScan) Work(ctx context.Context, j *job.Job[tasks.CopyrightScanArgs]) error {
	id := j.Args.TrackID
	track, err := h.store.GetTrack(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		// Deleted since upload: there is nothing left to scan or flag.
		h.log.InfoContext(ctx, "copyright scan: track gone, nothing to scan", "track_id", id)
		return j.SetResult(ScanOutcome{TrackID: id, Status: "track deleted"})
	}
	if err != nil {
		return fmt.Errorf("copyright scan of track %d: %w", id, err)
	}
	if h.mod == nil {
		sc := store.CopyrightScan{TrackID: id, Status: store.ScanSkipped, Error: "skipped: moderation disabled"}
		if err := h.store.SaveScan(ctx, sc); err != nil {
			return fmt.Errorf("copyright scan of track %d: %w", id, err)
		}
		return j.SetResult(ScanOutcome{TrackID: id, Status: string(store.ScanSkipped), Reason: sc.Error})
	}
	uploader := h.uploader(ctx, track.ArtistDID)

	if sc, rep, ok, err := h.savedByThisTask(ctx, j); err != nil {
		return fmt.Errorf("copyright scan of track %d: %w", id, err)
	} else if ok {
		out := outcome(sc, h.mod.Rule().Apply(scanResult(sc), uploader))
		out.Resumed = true
		if sc.Flagged && rep.ReportedAt.IsZero() {
			if err := h.report(ctx, j.Task, track, sc, &out); err != nil {
				return err
			}
		} else {
			out.Reported = !rep.ReportedAt.IsZero()
		}
		return j.SetResult(out)
	}

	res, err := h.mod.Scan(ctx, j.Args.AudioURL)
	if err != nil {
		return h.scanFailed(ctx, j, err)
	}
	v := h.mod.Rule().Apply(res, uploader)
	sc, err := storedScan(id, res, v)
	if err != nil {
		return h.scanFailed(ctx, j, job.Permanent(err))
	}
	if err := h.store.SaveScan(ctx, sc); err != nil {
		return fmt.Errorf("copyright scan of track %d: %w", id, err)
	}
	if err := h.store.RecordScanTask(ctx, id, j.ID, sc.ScannedAt); err != nil {
		// The scan is saved; a retry scans again rather than trusting it.
		return fmt.Errorf("copyright scan of track %d: %w", id, err)
	}
	out := outcome(sc, v)
	h.log.InfoContext(ctx, "copyright scan done", "track_id", id, "status", sc.Status,
		"dominant_match_pct", sc.DominantMatchPct, "sustained_song_count", sc.SustainedSongCount,
		"self_match", v.SelfMatch, "service_flagged", res.ServiceFlagged)
	if sc.Flagged {
		if err := h.report(ctx, j.Task, track, sc, &out); err != nil {
			return err
		}
	}
	return j.SetResult(out)
}

// savedByThisTask finds the current scan when an earlier attempt of this
// same task saved it (clean or flagged), with its report state.
func (h *CopyrightScan) savedByThisTask(ctx context.Context, j *job.Job[tasks.CopyrightScanArgs]) (store.CopyrightScan, store.ScanReport, bool, error) {
	if j.ID == "" {
		return store.CopyrightScan{}, store.ScanReport{}, false, nil
	}
	rep, err := h.store.GetScanReport(ctx, j.Args.TrackID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && rep.TaskID != j.ID) {
		return store.CopyrightScan{}, store.ScanReport{}, false, nil
	}
	if err != nil {
		return store.CopyrightScan{}, store.ScanReport{}, false, err
	}
	sc, err := h.store.GetScan(ctx, j.Args.TrackID)
	if errors.Is(err, store.ErrNotFound) {
		return store.CopyrightScan{}, store.ScanReport{}, false, nil
	}
	if err != nil {
		return store.CopyrightScan{}, store.ScanReport{}, false, err
	}
	done := sc.Status == store.ScanClean || sc.Status == store.ScanFlagged
	if !done || !sc.ScannedAt.Equal(rep.ScannedAt) {
		return store.CopyrightScan{}, store.ScanReport{}, false, nil
	}
	return sc, rep, true, nil
}

// scanFailed classifies a scan error; a permanent one, or any on the last
// attempt, is recorded as a failed scan so it never reads as clean.
func (h *CopyrightScan) scanFailed(ctx context.Context, j *job.Job[tasks.CopyrightScanArgs], err error) error {
	id := j.Args.TrackID
	cls := classify(fmt.Errorf("copyright scan of track %d: %w", id, err))
	if ctx.Err() != nil {
		// Shutdown or the attempt's timeout: the task goes back to the queue,
		// so this is no verdict on the scan.
		return cls
	}
	if !job.IsPermanent(cls) && !j.LastAttempt() {
		h.log.WarnContext(ctx, "copyright scan failed, will retry", "track_id", id, "attempt", j.Attempt+1, "error", err)
		return cls
	}
	sc := store.CopyrightScan{TrackID: id, Status: store.ScanFailed, Error: err.Error()}
	if serr := h.store.SaveScan(ctx, sc); serr != nil {
		return errors.Join(cls, fmt.Errorf("record failed scan of track %d: %w", id, serr))
	}
	h.log.ErrorContext(ctx, "copyright scan failed for good", "track_id", id, "attempt", j.Attempt+1, "error", err)
	return cls
}

// report sends sc's flag to the labeler and records that it got there. A
// track without a record URI yet is left pending for the resolution sync.
func (h *CopyrightScan) report(ctx context.Context, t *job.Task, track store.Track, sc store.CopyrightScan, out *ScanOutcome) error {
	if track.RecordURI == "" {
		out.ReportPending = "track has no ATProto record yet; copyright:sync-resolutions reports it once it has"
		return nil
	}
	err := sendReport(ctx, h.mod, h.store, track, sc)
	if err == nil {
		out.Reported = true
		return nil
	}
	cls := classify(fmt.Errorf("copyright scan of track %d: %w", track.ID, err))
	// The scan stays flagged with its report pending: the next attempt, or
	// the resolution sync after the last one, sends it.
	h.log.WarnContext(ctx, "copyright flag not reported to the labeler", "track_id", track.ID,
		"attempt", t.Attempt+1, "last_attempt", t.LastAttempt(), "error", err)
	return cls
}

// uploader loads the artist for self-match suppression; without it no
// match is suppressed.
func (h *CopyrightScan) uploader(ctx context.Context, did string) moderation.Uploader {
	a, err := h.store.GetArtist(ctx, did)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			h.log.WarnContext(ctx, "copyright scan: artist not loaded, no self-match suppression", "error", err)
		}
		return moderation.Uploader{}
	}
	return moderation.Uploader{Handle: a.Handle, DisplayName: a.DisplayName}
}

// CopyrightSyncResolutions handles copyright:sync-resolutions.
type CopyrightSyncResolutions struct {
	store store.Store
	mod   *moderation.Client
	log   *slog.Logger
	// resendAfter is how old an unreported flag must be before the sync
	// re-sends it: by then the attempt that saved it has ended.
	resendAfter time.Duration
}

// NewCopyrightSyncResolutions returns the copyright:sync-resolutions handler.
func NewCopyrightSyncResolutions(d Deps) *CopyrightSyncResolutions {
	return &CopyrightSyncResolutions{store: d.Store, mod: d.Moderation, log: logger(d),
		resendAfter: tasks.CopyrightScanArgs{}.InsertOpts().Timeout}
}

// SyncOutcome is copyright:sync-resolutions' task result.
type SyncOutcome struct {
	Skipped      string `json:"skipped,omitempty"`
	ReportsSent  int    `json:"reports_sent"`
	Checked      int    `json:"checked"`
	Negated      int    `json:"negated"`
	FlagsCleared int    `json:"flags_cleared"`
}

// resendPerTick bounds the reports one sync re-sends.
const resendPerTick = 50

// Work runs one sync. Any labeler failure clears nothing and fails the run;
// the next tick tries again.
func (h *CopyrightSyncResolutions) Work(ctx context.Context, j *job.Job[tasks.CopyrightSyncResolutionsArgs]) error {
	if h.mod == nil {
		return j.SetResult(SyncOutcome{Skipped: "moderation disabled"})
	}
	var out SyncOutcome
	var errs []error
	sent, err := h.resendReports(ctx)
	out.ReportsSent = sent
	if err != nil {
		errs = append(errs, err)
	}

	flagged, err := h.store.ListFlaggedWithRecord(ctx)
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("copyright sync: %w", err))...)
	}
	uris := make([]string, 0, len(flagged))
	seen := map[string]bool{}
	for _, f := range flagged {
		if !seen[f.RecordURI] {
			seen[f.RecordURI] = true
			uris = append(uris, f.RecordURI)
		}
	}
	out.Checked = len(uris)
	if len(uris) > 0 {
		negated, err := h.mod.NegatedURIs(ctx, uris)
		if err != nil {
			_ = j.SetResult(out)
			return errors.Join(append(errs, fmt.Errorf("copyright sync: labeler unavailable, no flag cleared: %w", err))...)
		}
		var ids []int64
		for _, f := range flagged {
			if negated[f.RecordURI] {
				ids = append(ids, f.TrackID)
			}
		}
		out.Negated = len(ids)
		if len(ids) > 0 {
			n, err := h.store.ClearFlags(ctx, ids, time.Now())
			out.FlagsCleared = n
			if err != nil {
				errs = append(errs, fmt.Errorf("copyright sync: %w", err))
			}
		}
	}
	h.log.InfoContext(ctx, "copyright sync done", "checked", out.Checked, "negated", out.Negated,
		"flags_cleared", out.FlagsCleared, "reports_sent", out.ReportsSent)
	if err := j.SetResult(out); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// resendReports sends flags whose report never reached the labeler (the
// scan task ran out of attempts, or the track had no record yet). It stops
// at the first transient failure: the labeler is likely down.
func (h *CopyrightSyncResolutions) resendReports(ctx context.Context) (int, error) {
	pending, err := h.store.ListUnreportedFlags(ctx, time.Now().Add(-h.resendAfter), resendPerTick)
	if err != nil {
		return 0, fmt.Errorf("copyright sync: %w", err)
	}
	sent := 0
	var errs []error
	for _, p := range pending {
		track, err := h.store.GetTrack(ctx, p.TrackID)
		if err == nil {
			var sc store.CopyrightScan
			if sc, err = h.store.GetScan(ctx, p.TrackID); err == nil {
				err = sendReport(ctx, h.mod, h.store, track, sc)
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("copyright sync: report flag of track %d: %w", p.TrackID, err))
			if moderation.Retryable(err) {
				break
			}
			continue
		}
		sent++
	}
	return sent, errors.Join(errs...)
}

// sendReport reports sc's flag for track and marks it reported.
func sendReport(ctx context.Context, mod *moderation.Client, st store.Store, track store.Track, sc store.CopyrightScan) error {
	err := mod.ReportFlag(ctx, moderation.FlagReport{
		SubjectURI: track.RecordURI,
		TrackID:    track.ID,
		Reason:     flagReason(sc),
		Notes:      flagNotes(track, sc),
	})
	if err != nil {
		return err
	}
	if _, err := st.MarkScanReported(ctx, track.ID, sc.ScannedAt, time.Now()); err != nil {
		return fmt.Errorf("flag reported but not recorded: %w", err)
	}
	return nil
}

// classify maps a moderation error to the job's error classes.
func classify(err error) error {
	if job.IsPermanent(err) || !moderation.Retryable(err) {
		return job.Permanent(err)
	}
	if d, ok := moderation.RetryAfterHint(err); ok {
		return job.RetryAfter(d, err)
	}
	return err
}

// storedScan is the scan row for res and v, saved at now (millisecond
// precision, as stored).
func storedScan(trackID int64, res *moderation.ScanResult, v moderation.Verdict) (store.CopyrightScan, error) {
	matches, err := json.Marshal(res.Matches)
	if err != nil {
		return store.CopyrightScan{}, fmt.Errorf("encode matches: %w", err)
	}
	sc := store.CopyrightScan{
		TrackID:            trackID,
		Status:             store.ScanClean,
		Flagged:            v.Flagged,
		DominantMatchPct:   res.DominantMatchPct,
		DominantMatch:      res.DominantMatch,
		SustainedSongCount: res.SustainedSongCount,
		HighestScore:       res.HighestScore,
		Matches:            matches,
		Raw:                res.Raw,
		ScannedAt:          time.Now().UTC().Truncate(time.Millisecond),
	}
	if v.Flagged {
		sc.Status = store.ScanFlagged
	}
	return sc, nil
}

// scanResult rebuilds the service's answer from a stored scan.
func scanResult(sc store.CopyrightScan) *moderation.ScanResult {
	res := &moderation.ScanResult{
		DominantMatchPct:   sc.DominantMatchPct,
		DominantMatch:      sc.DominantMatch,
		SustainedSongCount: sc.SustainedSongCount,
		HighestScore:       sc.HighestScore,
		Raw:                sc.Raw,
	}
	_ = json.Unmarshal(sc.Matches, &res.Matches) // best effort: only names the dominant artist
	return res
}

func outcome(sc store.CopyrightScan, v moderation.Verdict) ScanOutcome {
	return ScanOutcome{
		TrackID:            sc.TrackID,
		Status:             string(sc.Status),
		Flagged:            sc.Flagged,
		SelfMatch:          v.SelfMatch,
		Reason:             v.Reason,
		DominantMatchPct:   sc.DominantMatchPct,
		SustainedSongCount: sc.SustainedSongCount,
	}
}

// flagReason is the labeler event's one-line reason, from the stored scan
// alone (a retry reports what was found, whatever the thresholds are now).
func flagReason(sc store.CopyrightScan) string {
	m := sc.DominantMatch
	if m == "" {
		m = "no dominant song"
	}
	return fmt.Sprintf("copyright scan: dominant match %s covers %g%%; %d sustained songs matched",
		m, sc.DominantMatchPct, sc.SustainedSongCount)
}

// maxNoteMatches bounds the matches listed in a report's notes.
const maxNoteMatches = 5

func flagNotes(track store.Track, sc store.CopyrightScan) string {
	var b strings.Builder
	fmt.Fprintf(&b, "track %d %q by %s, scanned %s", track.ID, track.Title, track.ArtistDID,
		sc.ScannedAt.UTC().Format(time.RFC3339))
	var matches []moderation.Match
	_ = json.Unmarshal(sc.Matches, &matches)
	if len(matches) > 0 {
		fmt.Fprintf(&b, "; %d matches", len(matches))
		for i, m := range matches {
			if i == maxNoteMatches {
				b.WriteString(", …")
				break
			}
			sep := ", "
			if i == 0 {
				sep = ": "
			}
			fmt.Fprintf(&b, "%s%s - %s", sep, m.Artist, m.Title)
			if m.Timecode != "" {
				fmt.Fprintf(&b, " @%s", m.Timecode)
			}
		}
	}
	return b.String()
}
