package export

import (
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/plyr-fm/plyrtasks/store"
)

// Phase is where an export is.
type Phase string

const (
	PhaseQueued    Phase = "queued"    // waiting for a worker
	PhaseListing   Phase = "listing"   // reading the track list and object sizes
	PhaseArchiving Phase = "archiving" // streaming tracks into the zip (uploading as it goes)
	PhaseUploading Phase = "uploading" // writing the zip's directory and completing the upload
	PhaseDone      Phase = "done"
)

// Progress is how far an export got. Bytes are source audio bytes; Percent
// follows bytes (tracks when sizes are unknown) and reaches 100 only when
// the zip is complete.
type Progress struct {
	Phase       Phase   `json:"phase"`
	TracksDone  int     `json:"tracks_done"`
	TracksTotal int     `json:"tracks_total"`
	BytesDone   int64   `json:"bytes_done"`
	BytesTotal  int64   `json:"bytes_total"`
	Percent     float64 `json:"percent"`
	Message     string  `json:"message"`
}

// percent computes Percent from the counters; done is the only 100.
func (p Progress) percent() float64 {
	if p.Phase == PhaseDone {
		return 100
	}
	var f float64
	switch {
	case p.BytesTotal > 0:
		f = float64(p.BytesDone) / float64(p.BytesTotal)
	case p.TracksTotal > 0:
		f = float64(p.TracksDone) / float64(p.TracksTotal)
	}
	pct := math.Floor(f*1000) / 10 // one decimal, never rounded up to 100
	return min(max(pct, 0), 99.9)
}

// Missing is a track that is not in the zip, and why.
type Missing struct {
	TrackID int64  `json:"track_id"`
	Title   string `json:"title"`
	Reason  string `json:"reason"`
}

// Result is a finished export.
type Result struct {
	// Key is the zip's object key in storage.
	Key string `json:"key"`
	// Size is the zip's size in bytes.
	Size int64 `json:"size"`
	// Tracks is how many tracks the zip holds, of TracksTotal published.
	Tracks      int `json:"tracks"`
	TracksTotal int `json:"tracks_total"`
	// Missing lists tracks that could not be read (also in the zip as
	// ManifestName). Never null.
	Missing []Missing `json:"missing"`
	// Substituted lists tracks whose original (lossless) file could not be
	// read, so the served file is in the zip instead.
	Substituted []Missing `json:"substituted,omitempty"`
	// DownloadURL is a presigned URL (S3) or a file path (local storage).
	DownloadURL string `json:"download_url"`
	// URLExpiresAt is when a presigned DownloadURL stops working.
	URLExpiresAt *time.Time `json:"url_expires_at,omitempty"`
}

// State is an export as GET /v1/exports/{id}, its event stream and the
// task result show it. Progress is flattened into it, so "percent",
// "phase" and "message" are top-level fields.
type State struct {
	ExportID  string          `json:"export_id"`
	ArtistDID string          `json:"artist_did"`
	Status    store.JobStatus `json:"status"`
	TaskID    string          `json:"task_id,omitempty"`
	Progress
	Result      *Result    `json:"result,omitempty"`
	Error       string     `json:"error,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
	CompletedAt *time.Time `json:"completed_at,omitempty"`
}

// jobData is what the job row's Result column holds: the detailed progress
// (the row's own columns keep only percent, phase and message) and, once
// done, the result.
type jobData struct {
	Progress Progress `json:"progress"`
	Result   *Result  `json:"result,omitempty"`
}

func (d jobData) encode() json.RawMessage {
	b, err := json.Marshal(d)
	if err != nil {
		panic(fmt.Sprintf("export: encode job data: %v", err)) // plain structs: cannot fail
	}
	return b
}

// StateOf reads an export's state from its job row.
func StateOf(j store.Job) State {
	var d jobData
	if len(j.Result) > 0 {
		_ = json.Unmarshal(j.Result, &d) // a foreign row shape leaves the zero progress
	}
	p := d.Progress
	if p.Phase == "" {
		p.Phase = Phase(j.Phase)
	}
	if p.Message == "" {
		p.Message = j.Message
	}
	p.Percent = j.Progress
	s := State{
		ExportID:  j.ID,
		ArtistDID: j.OwnerDID,
		Status:    j.Status,
		TaskID:    j.TaskID,
		Progress:  p,
		Result:    d.Result,
		Error:     j.Error,
		CreatedAt: j.CreatedAt,
		UpdatedAt: j.UpdatedAt,
	}
	if !j.CompletedAt.IsZero() {
		c := j.CompletedAt
		s.CompletedAt = &c
	}
	return s
}
