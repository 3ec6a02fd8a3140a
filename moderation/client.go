package moderation

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// KeyHeader carries the moderation key on every call, to the moderation
// service and to the labeler's internal endpoints alike.
const KeyHeader = "X-Moderation-Key"

// ActionFlaggedByScan is the labeler event action of a scan's flag.
const ActionFlaggedByScan = "flagged_by_scan"

// Options configure a Client. Zero fields take the documented defaults.
type Options struct {
	// URL is the moderation service's base URL (MODERATION_URL). Required.
	URL string
	// Key is sent as X-Moderation-Key (MODERATION_KEY). Required.
	Key string
	// Timeout bounds one scan request, answer included. Scans take minutes
	// for long tracks. Default 5m (MODERATION_TIMEOUT).
	Timeout time.Duration

	// LabelerURL is the labeler's base URL. Default URL: plyr.fm's labeler
	// is part of the moderation service (LABELER_URL).
	LabelerURL string
	// LabelerKey is sent as X-Moderation-Key to the labeler. Default Key
	// (LABELER_KEY).
	LabelerKey string
	// LabelerTimeout bounds one labeler request. Default 30s.
	LabelerTimeout time.Duration
	// Actor names plyrtasks in labeler events. Default "service:plyrtasks".
	Actor string
	// NegatedBatch is how many URIs one negated-labels request asks about.
	// Default 100.
	NegatedBatch int

	// Rule is the flag rule applied to scans. Zero fields take Rule's
	// defaults (30% dominant match, 3 sustained songs).
	Rule Rule
	// AudioURLs guard the URLs sent for scanning.
	AudioURLs GuardOptions

	// HTTPClient sends the requests. Default: a client without its own
	// timeout (each call has one) that does not follow redirects: the
	// moderation endpoints answer directly, and a redirect would carry the
	// key elsewhere.
	HTTPClient *http.Client
}

// Client talks to the moderation service and the labeler. It is safe for
// concurrent use.
type Client struct {
	opts    Options
	scanURL string
	events  string
	negated string
	guard   *Guard
	http    *http.Client
}

// New checks o and returns a Client. Errors name the setting.
func New(o Options) (*Client, error) {
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Minute
	}
	if o.LabelerURL == "" {
		o.LabelerURL = o.URL
	}
	if o.LabelerKey == "" {
		o.LabelerKey = o.Key
	}
	if o.LabelerTimeout == 0 {
		o.LabelerTimeout = 30 * time.Second
	}
	if o.Actor == "" {
		o.Actor = "service:plyrtasks"
	}
	if o.NegatedBatch <= 0 {
		o.NegatedBatch = 100
	}
	o.Rule = o.Rule.withDefaults()
	if o.Key == "" {
		return nil, &ConfigError{Reason: "a key is required (MODERATION_KEY)"}
	}
	if o.Timeout < 0 || o.LabelerTimeout < 0 {
		return nil, &ConfigError{Reason: "timeouts must be positive"}
	}
	c := &Client{opts: o, http: o.HTTPClient}
	var err error
	if c.scanURL, err = endpoint("moderation URL (MODERATION_URL)", o.URL, "/scan"); err != nil {
		return nil, err
	}
	if c.events, err = endpoint("labeler URL (LABELER_URL)", o.LabelerURL, "/internal/events"); err != nil {
		return nil, err
	}
	if c.negated, err = endpoint("labeler URL (LABELER_URL)", o.LabelerURL, "/internal/negated-labels"); err != nil {
		return nil, err
	}
	if c.guard, err = NewGuard(o.AudioURLs); err != nil {
		return nil, err
	}
	if c.http == nil {
		c.http = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	return c, nil
}

func endpoint(what, base, path string) (string, error) {
	if err := CheckServiceURL(base); err != nil {
		return "", &ConfigError{Reason: fmt.Sprintf("%s %v", what, err)}
	}
	return strings.TrimRight(base, "/") + path, nil
}

// CheckServiceURL reports whether raw can be a moderation service or
// labeler base URL: http(s) with a host, and no credentials, query or
// fragment (the key travels in its header, never in the URL).
func CheckServiceURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("must be an http(s) URL with a host, got %q", raw)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return errors.New("must not carry credentials, a query or a fragment (the key has its own setting)")
	}
	return nil
}

// Rule returns the flag rule the client was configured with.
func (c *Client) Rule() Rule { return c.opts.Rule }

// Match is one fingerprint match.
type Match struct {
	Artist   string  `json:"artist"`
	Title    string  `json:"title"`
	Album    string  `json:"album,omitempty"`
	Score    float64 `json:"score"`
	ISRC     string  `json:"isrc,omitempty"`
	Timecode string  `json:"timecode,omitempty"`
	OffsetMS *int64  `json:"offset_ms,omitempty"`
}

// ScanResult is the moderation service's answer to a scan.
type ScanResult struct {
	Matches []Match
	// ServiceFlagged is the service's own is_flagged. It is informational:
	// Rule.Apply decides.
	ServiceFlagged bool
	// DominantMatchPct is the share (0–100) of matched segments that belong
	// to the most matched song; DominantMatch names it ("Artist - Title").
	DominantMatchPct float64
	DominantMatch    string
	// SustainedSongCount is how many distinct songs match over a sustained
	// stretch (a DJ mix's signal).
	SustainedSongCount int
	// HighestScore is the best match score (AuDD's accurate-offsets mode
	// reports none, so often 0).
	HighestScore float64
	// Raw is AuDD's response as the service relayed it.
	Raw json.RawMessage
}

// scanAnswer is the wire form; pointers tell a missing field from a zero.
type scanAnswer struct {
	Matches            *[]Match        `json:"matches"`
	IsFlagged          bool            `json:"is_flagged"`
	DominantMatchPct   *float64        `json:"dominant_match_pct"`
	DominantMatch      *string         `json:"dominant_match"`
	SustainedSongCount *int            `json:"sustained_song_count"`
	HighestScore       float64         `json:"highest_score"`
	RawResponse        json.RawMessage `json:"raw_response"`
}

// Answers are bounded: a two-hour mix's raw AuDD answer is large, but not
// this large.
const (
	maxScanAnswer    = 32 << 20
	maxLabelerAnswer = 4 << 20
)

// Scan asks the moderation service to fingerprint the audio at audioURL.
// The URL is checked by the client's Guard first (and preflighted when
// configured). Errors classify with Retryable and RetryAfterHint.
func (c *Client) Scan(ctx context.Context, audioURL string) (*ScanResult, error) {
	if err := c.guard.Check(ctx, audioURL); err != nil {
		return nil, err
	}
	if err := c.guard.Preflight(ctx, audioURL); err != nil {
		return nil, err
	}
	const op = "moderation scan"
	body, err := c.post(ctx, op, c.scanURL, c.opts.Key, c.opts.Timeout, maxScanAnswer,
		map[string]string{"audio_url": audioURL})
	if err != nil {
		return nil, err
	}
	return parseScan(op, body)
}

func parseScan(op string, body []byte) (*ScanResult, error) {
	var a scanAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		return nil, &ProtocolError{Op: op, Reason: "not a JSON scan result", Err: err}
	}
	var missing []string
	if a.Matches == nil {
		missing = append(missing, "matches")
	}
	if a.DominantMatchPct == nil {
		missing = append(missing, "dominant_match_pct")
	}
	if a.SustainedSongCount == nil {
		missing = append(missing, "sustained_song_count")
	}
	if len(missing) > 0 {
		return nil, &ProtocolError{Op: op, Reason: "missing " + strings.Join(missing, ", ")}
	}
	if p := *a.DominantMatchPct; p < 0 || p > 100 {
		return nil, &ProtocolError{Op: op, Reason: fmt.Sprintf("dominant_match_pct %v is outside 0..100", p)}
	}
	if *a.SustainedSongCount < 0 {
		return nil, &ProtocolError{Op: op, Reason: "sustained_song_count is negative"}
	}
	r := &ScanResult{
		Matches:            *a.Matches,
		ServiceFlagged:     a.IsFlagged,
		DominantMatchPct:   *a.DominantMatchPct,
		SustainedSongCount: *a.SustainedSongCount,
		HighestScore:       a.HighestScore,
		Raw:                a.RawResponse,
	}
	if a.DominantMatch != nil {
		r.DominantMatch = *a.DominantMatch
	}
	if r.Matches == nil {
		r.Matches = []Match{}
	}
	for _, m := range r.Matches {
		r.HighestScore = max(r.HighestScore, m.Score)
	}
	if bytes.Equal(bytes.TrimSpace(r.Raw), []byte("null")) {
		r.Raw = nil
	}
	return r, nil
}

// FlagReport is a flag reported to the labeler's event log.
type FlagReport struct {
	// SubjectURI is the track's record URI (at://…). Required.
	SubjectURI string
	TrackID    int64
	// Reason is one line a moderator reads first; Notes the details.
	Reason string
	Notes  string
}

type event struct {
	SubjectURI     string `json:"subject_uri"`
	SubjectTrackID int64  `json:"subject_track_id,omitempty"`
	Action         string `json:"action"`
	Actor          string `json:"actor"`
	Reason         string `json:"reason,omitempty"`
	Notes          string `json:"notes,omitempty"`
}

// ReportFlag records a flagged_by_scan event for the track at the labeler
// (POST {LABELER_URL}/internal/events), for moderators to review.
func (c *Client) ReportFlag(ctx context.Context, r FlagReport) error {
	if !strings.HasPrefix(r.SubjectURI, "at://") {
		return &ConfigError{Reason: fmt.Sprintf("labeler report: subject_uri must be an at:// URI, got %q", r.SubjectURI)}
	}
	_, err := c.post(ctx, "labeler report", c.events, c.opts.LabelerKey, c.opts.LabelerTimeout, maxLabelerAnswer, event{
		SubjectURI:     r.SubjectURI,
		SubjectTrackID: r.TrackID,
		Action:         ActionFlaggedByScan,
		Actor:          c.opts.Actor,
		Reason:         r.Reason,
		Notes:          r.Notes,
	})
	return err
}

// NegatedURIs asks the labeler which of uris had their labels explicitly
// negated (a moderator resolved the flag), in batches of NegatedBatch. It
// returns only URIs that were asked about. Any failed batch fails the whole
// call, so a caller never acts on a partial answer; an answer without a
// negated_uris list is a *ProtocolError, never "nothing negated".
func (c *Client) NegatedURIs(ctx context.Context, uris []string) (map[string]bool, error) {
	const op = "labeler negated-labels"
	asked := make(map[string]bool, len(uris))
	for _, u := range uris {
		asked[u] = true
	}
	out := map[string]bool{}
	for start := 0; start < len(uris); start += c.opts.NegatedBatch {
		batch := uris[start:min(start+c.opts.NegatedBatch, len(uris))]
		body, err := c.post(ctx, op, c.negated, c.opts.LabelerKey, c.opts.LabelerTimeout, maxLabelerAnswer,
			map[string][]string{"uris": batch})
		if err != nil {
			return nil, err
		}
		var a struct {
			NegatedURIs *[]string `json:"negated_uris"`
		}
		if err := json.Unmarshal(body, &a); err != nil {
			return nil, &ProtocolError{Op: op, Reason: "not a JSON object", Err: err}
		}
		if a.NegatedURIs == nil {
			return nil, &ProtocolError{Op: op, Reason: "missing negated_uris"}
		}
		for _, u := range *a.NegatedURIs {
			if asked[u] {
				out[u] = true
			}
		}
	}
	return out, nil
}

// post sends in as JSON with the key and returns the 2xx answer's body.
func (c *Client) post(ctx context.Context, op, target, key string, timeout time.Duration, limit int64, in any) ([]byte, error) {
	payload, err := json.Marshal(in)
	if err != nil {
		return nil, fmt.Errorf("%s: encode request: %w", op, err)
	}
	callCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(callCtx, http.MethodPost, target, bytes.NewReader(payload))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set(KeyHeader, key)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.transportError(ctx, callCtx, op, timeout, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody+1))
		return nil, &StatusError{
			Op:         op,
			StatusCode: resp.StatusCode,
			Body:       errorBody(b),
			RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()),
		}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, c.transportError(ctx, callCtx, op, timeout, fmt.Errorf("read answer: %w", err))
	}
	if int64(len(body)) > limit {
		return nil, &ProtocolError{Op: op, Reason: fmt.Sprintf("answer larger than %d bytes", limit)}
	}
	return body, nil
}

// transportError tells the call's own timeout (transient, TimeoutError)
// from the caller's context ending (returned as is) and network failures.
func (c *Client) transportError(parent, call context.Context, op string, timeout time.Duration, err error) error {
	if parent.Err() != nil {
		return fmt.Errorf("%s: %w", op, parent.Err())
	}
	if errors.Is(call.Err(), context.DeadlineExceeded) {
		return &TimeoutError{Op: op, Timeout: timeout, Err: context.DeadlineExceeded}
	}
	return fmt.Errorf("%s: %w", op, err)
}
