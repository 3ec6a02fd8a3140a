package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/plyr-fm/plyrtasks/store"
)

// TestCopyrightReports runs the report-state methods (copyright_reports.go)
// against every backend.
func TestCopyrightReports(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			st := b.open(t)
			if err := st.UpsertArtist(ctx, store.Artist{DID: "did:plc:a"}); err != nil {
				t.Fatal(err)
			}
			track := func(uri string) int64 {
				tr, err := st.CreateTrack(ctx, store.Track{ArtistDID: "did:plc:a", RecordURI: uri})
				if err != nil {
					t.Fatal(err)
				}
				return tr.ID
			}
			t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
			save := func(id int64, flagged bool, at time.Time) {
				status := store.ScanClean
				if flagged {
					status = store.ScanFlagged
				}
				if err := st.SaveScan(ctx, store.CopyrightScan{TrackID: id, Status: status, Flagged: flagged, ScannedAt: at}); err != nil {
					t.Fatal(err)
				}
			}
			unreported := func(before time.Time) string {
				got, err := st.ListUnreportedFlags(ctx, before, 10)
				if err != nil {
					t.Fatal(err)
				}
				return fmt.Sprint(got)
			}

			a, bb, c, noRecord := track("at://did:plc:a/fm.plyr.track/a"), track("at://did:plc:a/fm.plyr.track/b"),
				track("at://did:plc:a/fm.plyr.track/c"), track("")
			if _, err := st.GetScanReport(ctx, a); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("GetScanReport of a fresh track = %v, want ErrNotFound", err)
			}
			save(a, true, t0.Add(2*time.Minute))
			save(bb, true, t0.Add(time.Minute))
			save(c, false, t0)
			save(noRecord, true, t0)

			// Flagged, with a record, never reported: oldest scan first.
			want := fmt.Sprintf("[{%d at://did:plc:a/fm.plyr.track/b} {%d at://did:plc:a/fm.plyr.track/a}]", bb, a)
			if got := unreported(t0.Add(time.Hour)); got != want {
				t.Errorf("ListUnreportedFlags = %s, want %s", got, want)
			}
			if got := unreported(t0.Add(90 * time.Second)); got != fmt.Sprintf("[{%d at://did:plc:a/fm.plyr.track/b}]", bb) {
				t.Errorf("ListUnreportedFlags(savedBefore) = %s, want only b", got)
			}

			if err := st.RecordScanTask(ctx, a, "task-a", t0.Add(2*time.Minute)); err != nil {
				t.Fatal(err)
			}
			rep, err := st.GetScanReport(ctx, a)
			if err != nil || rep.TaskID != "task-a" || !rep.ScannedAt.Equal(t0.Add(2*time.Minute)) || !rep.ReportedAt.IsZero() {
				t.Fatalf("GetScanReport = %+v, %v", rep, err)
			}

			// Marking another scan than the current one changes nothing.
			if ok, err := st.MarkScanReported(ctx, a, t0, t0.Add(3*time.Minute)); err != nil || ok {
				t.Fatalf("MarkScanReported(stale scan) = %v, %v; want false", ok, err)
			}
			if ok, err := st.MarkScanReported(ctx, a, t0.Add(2*time.Minute), t0.Add(3*time.Minute)); err != nil || !ok {
				t.Fatalf("MarkScanReported = %v, %v; want true", ok, err)
			}
			rep, _ = st.GetScanReport(ctx, a)
			if rep.TaskID != "task-a" || !rep.ReportedAt.Equal(t0.Add(3*time.Minute)) {
				t.Errorf("after MarkScanReported: %+v", rep)
			}
			// b had no report row: marking creates it.
			if ok, err := st.MarkScanReported(ctx, bb, t0.Add(time.Minute), t0.Add(4*time.Minute)); err != nil || !ok {
				t.Fatalf("MarkScanReported(b) = %v, %v", ok, err)
			}
			if got := unreported(t0.Add(time.Hour)); got != "[]" {
				t.Errorf("ListUnreportedFlags after reporting = %s, want none", got)
			}

			// A rescan makes the earlier report not count.
			save(a, true, t0.Add(10*time.Minute))
			if got := unreported(t0.Add(time.Hour)); got != fmt.Sprintf("[{%d at://did:plc:a/fm.plyr.track/a}]", a) {
				t.Errorf("after a rescan ListUnreportedFlags = %s, want a again", got)
			}
			// Taking over a report row of an older scan clears its task.
			if ok, err := st.MarkScanReported(ctx, a, t0.Add(10*time.Minute), t0.Add(11*time.Minute)); err != nil || !ok {
				t.Fatal(ok, err)
			}
			rep, _ = st.GetScanReport(ctx, a)
			if rep.TaskID != "" || !rep.ScannedAt.Equal(t0.Add(10*time.Minute)) {
				t.Errorf("report of the new scan = %+v, want no task and the new scanned_at", rep)
			}
			// RecordScanTask resets the report.
			if err := st.RecordScanTask(ctx, a, "task-a2", t0.Add(10*time.Minute)); err != nil {
				t.Fatal(err)
			}
			if rep, _ = st.GetScanReport(ctx, a); rep.TaskID != "task-a2" || !rep.ReportedAt.IsZero() {
				t.Errorf("after RecordScanTask: %+v", rep)
			}
			// Cleared flags are not pending.
			if _, err := st.ClearFlags(ctx, []int64{a}, t0.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			if got := unreported(t0.Add(time.Hour)); got != "[]" {
				t.Errorf("ListUnreportedFlags after clearing = %s, want none", got)
			}
		})
	}
}
