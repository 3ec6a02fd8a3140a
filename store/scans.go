package store

import (
	"context"
	"fmt"
	"time"
)

const scanCols = `track_id, status, flagged, dominant_match_pct, dominant_match, sustained_song_count,
	highest_score, matches, raw, error, scanned_at, resolved_at`

// SaveScan stores s as the track's current scan, replacing any earlier one.
// ScannedAt defaults to now. The track must exist.
func (s *sqlStore) SaveScan(ctx context.Context, sc CopyrightScan) error {
	what := fmt.Sprintf("save scan of track %d", sc.TrackID)
	switch sc.Status {
	case ScanClean, ScanFlagged, ScanFailed, ScanSkipped:
	default:
		return fmt.Errorf("%s: Status %q is not clean, flagged, failed or skipped", what, sc.Status)
	}
	matches, err := jsonText(sc.Matches, "Matches")
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	raw, err := jsonText(sc.Raw, "Raw")
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	_, err = s.db.ExecContext(ctx, s.q(`
		INSERT INTO copyright_scans (`+scanCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (track_id) DO UPDATE SET status = excluded.status, flagged = excluded.flagged,
			dominant_match_pct = excluded.dominant_match_pct, dominant_match = excluded.dominant_match,
			sustained_song_count = excluded.sustained_song_count, highest_score = excluded.highest_score,
			matches = excluded.matches, raw = excluded.raw, error = excluded.error,
			scanned_at = excluded.scanned_at, resolved_at = excluded.resolved_at`),
		sc.TrackID, string(sc.Status), sc.Flagged, sc.DominantMatchPct, sc.DominantMatch,
		sc.SustainedSongCount, sc.HighestScore, matches, raw, sc.Error,
		toMS(orNow(sc.ScannedAt)), toMS(sc.ResolvedAt))
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

func (s *sqlStore) GetScan(ctx context.Context, trackID int64) (CopyrightScan, error) {
	var sc CopyrightScan
	var status, matches, raw string
	var scanned, resolved int64
	err := s.db.QueryRowContext(ctx, s.q(`SELECT `+scanCols+` FROM copyright_scans WHERE track_id = ?`), trackID).
		Scan(&sc.TrackID, &status, &sc.Flagged, &sc.DominantMatchPct, &sc.DominantMatch,
			&sc.SustainedSongCount, &sc.HighestScore, &matches, &raw, &sc.Error, &scanned, &resolved)
	if err != nil {
		return CopyrightScan{}, notFound(err, fmt.Sprintf("get scan of track %d", trackID))
	}
	sc.Status, sc.Matches, sc.Raw = ScanStatus(status), rawJSON(matches), rawJSON(raw)
	sc.ScannedAt, sc.ResolvedAt = fromMS(scanned), fromMS(resolved)
	return sc, nil
}

// ListFlaggedWithRecord returns flagged tracks that have an ATProto record,
// by track ID.
func (s *sqlStore) ListFlaggedWithRecord(ctx context.Context) ([]FlaggedTrack, error) {
	rows, err := s.db.QueryContext(ctx, `
		SELECT t.id, t.record_uri FROM copyright_scans c JOIN tracks t ON t.id = c.track_id
		WHERE c.flagged AND t.record_uri <> '' ORDER BY t.id`)
	if err != nil {
		return nil, fmt.Errorf("list flagged tracks: %w", err)
	}
	defer rows.Close()
	var out []FlaggedTrack
	for rows.Next() {
		var f FlaggedTrack
		if err := rows.Scan(&f.TrackID, &f.RecordURI); err != nil {
			return nil, fmt.Errorf("list flagged tracks: %w", err)
		}
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list flagged tracks: %w", err)
	}
	return out, nil
}

// clearFlagsBatch keeps each UPDATE well under both dialects' parameter limits.
const clearFlagsBatch = 500

// ClearFlags sets flagged=false and resolved_at on the given tracks' scans
// that are still flagged and returns how many changed. Status is left as
// recorded ("flagged"): it says what the scan found, Flagged and ResolvedAt
// say that the flag was since cleared.
func (s *sqlStore) ClearFlags(ctx context.Context, trackIDs []int64, resolvedAt time.Time) (int, error) {
	resolved := toMS(orNow(resolvedAt))
	total := 0
	for start := 0; start < len(trackIDs); start += clearFlagsBatch {
		batch := trackIDs[start:min(start+clearFlagsBatch, len(trackIDs))]
		args := make([]any, 0, len(batch)+2)
		args = append(args, false, resolved)
		for _, id := range batch {
			args = append(args, id)
		}
		res, err := s.db.ExecContext(ctx, s.q(`
			UPDATE copyright_scans SET flagged = ?, resolved_at = ?
			WHERE flagged AND track_id IN (`+placeholders(len(batch))+`)`), args...)
		if err != nil {
			return total, fmt.Errorf("clear flags: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, fmt.Errorf("clear flags: %w", err)
		}
		total += int(n)
	}
	return total, nil
}
