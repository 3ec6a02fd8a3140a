package store

import (
	"context"
	"fmt"
	"time"
)

// ScanReport is the report state of a track's scan: which task saved it and
// when its flag reached the labeler. It belongs to the scan saved at
// ScannedAt; once a rescan replaces that scan, the report no longer counts.
type ScanReport struct {
	TrackID    int64
	TaskID     string    // the task that saved the scan ("" when unknown)
	ScannedAt  time.Time // the scan it belongs to (CopyrightScan.ScannedAt)
	ReportedAt time.Time // zero until the flag reached the labeler
}

// CopyrightReports keeps the report state of flagged scans, so a labeler
// outage retries the report without re-running the (slow, costly) scan, and
// a flag whose report was never delivered is found again.
type CopyrightReports interface {
	// RecordScanTask records that task taskID saved the track's scan at
	// scannedAt, its report not yet sent. It replaces any earlier state.
	RecordScanTask(ctx context.Context, trackID int64, taskID string, scannedAt time.Time) error
	// GetScanReport returns the track's report state, ErrNotFound if none.
	GetScanReport(ctx context.Context, trackID int64) (ScanReport, error)
	// MarkScanReported records that the flag of the scan saved at scannedAt
	// reached the labeler. It returns false, changing nothing, when the
	// track's current scan is not that one (a rescan replaced it).
	MarkScanReported(ctx context.Context, trackID int64, scannedAt, reportedAt time.Time) (bool, error)
	// ListUnreportedFlags returns flagged tracks with a record URI whose
	// current scan, saved before savedBefore, has not been reported: oldest
	// scan first, at most limit.
	ListUnreportedFlags(ctx context.Context, savedBefore time.Time, limit int) ([]FlaggedTrack, error)
}

var _ CopyrightReports = (*sqlStore)(nil)

func (s *sqlStore) RecordScanTask(ctx context.Context, trackID int64, taskID string, scannedAt time.Time) error {
	_, err := s.db.ExecContext(ctx, s.q(`
		INSERT INTO copyright_reports (track_id, task_id, scanned_at, reported_at) VALUES (?, ?, ?, 0)
		ON CONFLICT (track_id) DO UPDATE SET task_id = excluded.task_id, scanned_at = excluded.scanned_at,
			reported_at = 0`),
		trackID, taskID, toMS(orNow(scannedAt)))
	if err != nil {
		return fmt.Errorf("record scan task of track %d: %w", trackID, err)
	}
	return nil
}

func (s *sqlStore) GetScanReport(ctx context.Context, trackID int64) (ScanReport, error) {
	r := ScanReport{TrackID: trackID}
	var scanned, reported int64
	err := s.db.QueryRowContext(ctx, s.q(`
		SELECT task_id, scanned_at, reported_at FROM copyright_reports WHERE track_id = ?`), trackID).
		Scan(&r.TaskID, &scanned, &reported)
	if err != nil {
		return ScanReport{}, notFound(err, fmt.Sprintf("get scan report of track %d", trackID))
	}
	r.ScannedAt, r.ReportedAt = fromMS(scanned), fromMS(reported)
	return r, nil
}

func (s *sqlStore) MarkScanReported(ctx context.Context, trackID int64, scannedAt, reportedAt time.Time) (bool, error) {
	// Only while the current scan is the one reported; a report row of an
	// older scan is taken over (its task no longer owns the current scan).
	res, err := s.db.ExecContext(ctx, s.q(`
		INSERT INTO copyright_reports (track_id, task_id, scanned_at, reported_at)
		SELECT track_id, '', scanned_at, ? FROM copyright_scans WHERE track_id = ? AND scanned_at = ?
		ON CONFLICT (track_id) DO UPDATE SET reported_at = excluded.reported_at,
			task_id = CASE WHEN copyright_reports.scanned_at = excluded.scanned_at
				THEN copyright_reports.task_id ELSE '' END,
			scanned_at = excluded.scanned_at`),
		toMS(orNow(reportedAt)), trackID, toMS(scannedAt))
	if err != nil {
		return false, fmt.Errorf("mark scan of track %d reported: %w", trackID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("mark scan of track %d reported: %w", trackID, err)
	}
	return n > 0, nil
}

func (s *sqlStore) ListUnreportedFlags(ctx context.Context, savedBefore time.Time, limit int) ([]FlaggedTrack, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`
		SELECT t.id, t.record_uri FROM copyright_scans c
		JOIN tracks t ON t.id = c.track_id
		LEFT JOIN copyright_reports r ON r.track_id = c.track_id AND r.scanned_at = c.scanned_at
		WHERE c.flagged AND t.record_uri <> '' AND c.scanned_at < ?
			AND (r.track_id IS NULL OR r.reported_at = 0)
		ORDER BY c.scanned_at, t.id LIMIT ?`), toMS(savedBefore), limit)
	if err != nil {
		return nil, fmt.Errorf("list unreported flags: %w", err)
	}
	defer rows.Close()
	var out []FlaggedTrack
	for rows.Next() {
		var f FlaggedTrack
		if err := rows.Scan(&f.TrackID, &f.RecordURI); err != nil {
			return nil, fmt.Errorf("list unreported flags: %w", err)
		}
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list unreported flags: %w", err)
	}
	return out, nil
}
