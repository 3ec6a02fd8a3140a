package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/plyr-fm/plyrtasks/api"
)

// progressWidth is the bar's width in cells.
const progressWidth = 30

// progressLine renders one line about a task while --wait polls it: a bar
// when the task reports a percentage (the export does), its state
// otherwise. Known progress fields (phase, tracks, bytes, message) follow
// the bar.
//
//	[#########.....................]   31%  archiving  4 of 13 tracks, 52.0 MB
//	pending
//	retry: attempt 2 of 9 failed: pds said no
func progressLine(st *api.TaskStatus) string {
	switch st.State {
	case "retry":
		return withError(fmt.Sprintf("retry: attempt %d of %d failed", st.Attempts, st.MaxRetry+1), st.LastError)
	case "archived":
		return withError(fmt.Sprintf("archived after %d attempt(s)", st.Attempts), st.LastError)
	case "failed":
		return withError("failed", st.LastError)
	case "active", "completed":
		if pct, ok := st.Percent(); ok {
			parts := append([]string{bar(pct), fmt.Sprintf("%3.0f%%", clamp(pct))}, progressDetails(st.Progress)...)
			return strings.Join(parts, "  ")
		}
	}
	return st.State
}

func withError(s, lastErr string) string {
	if lastErr == "" {
		return s
	}
	return s + ": " + lastErr
}

func clamp(p float64) float64 {
	switch {
	case p < 0:
		return 0
	case p > 100:
		return 100
	}
	return p
}

func bar(pct float64) string {
	n := int(clamp(pct) / 100 * progressWidth)
	return "[" + strings.Repeat("#", n) + strings.Repeat(".", progressWidth-n) + "]"
}

// progressDetails picks the fields of the export's progress shape that read
// well on one line (phase, then message or tracks and bytes); other shapes
// show only the bar.
func progressDetails(raw json.RawMessage) []string {
	var p struct {
		Phase       string  `json:"phase"`
		TracksDone  *int    `json:"tracks_done"`
		TracksTotal *int    `json:"tracks_total"`
		BytesDone   *int64  `json:"bytes_done"`
		BytesTotal  *int64  `json:"bytes_total"`
		Message     string  `json:"message"`
		Percent     float64 `json:"percent"`
	}
	if json.Unmarshal(raw, &p) != nil {
		return nil
	}
	var out []string
	if p.Phase != "" {
		out = append(out, p.Phase)
	}
	// The task's own message (the export's "4 of 13 tracks, 52.0 MB") says
	// it best; the counters stand in when there is none.
	if p.Message != "" {
		return append(out, p.Message)
	}
	if p.TracksDone != nil && p.TracksTotal != nil {
		out = append(out, fmt.Sprintf("%d/%d tracks", *p.TracksDone, *p.TracksTotal))
	}
	if p.BytesDone != nil && p.BytesTotal != nil && *p.BytesTotal > 0 {
		out = append(out, fmt.Sprintf("%s/%s", humanBytes(*p.BytesDone), humanBytes(*p.BytesTotal)))
	}
	return out
}

func humanBytes(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGTPE"[exp])
}
