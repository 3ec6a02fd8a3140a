package config

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/plyr-fm/plyrtasks/moderation"
	"github.com/plyr-fm/plyrtasks/tasks"
)

// Moderation configures copyright scanning (the moderation service, which
// asks AuDD for fingerprint matches), reporting flags to the labeler, the
// flag rule, and which audio URLs may be sent for scanning. Both keys are
// secrets: String, LogValue and Config.Redacted never show them.
type Moderation struct {
	// MODERATION_URL: base URL of the moderation service (POST /scan). Unset
	// disables copyright scanning: every scan is recorded as "skipped:
	// moderation disabled". Default: unset (disabled).
	URL string `env:"MODERATION_URL"`
	// MODERATION_KEY: secret sent as the X-Moderation-Key header; required
	// with MODERATION_URL. Default: unset.
	Key string `env:"MODERATION_KEY" secret:"true"`
	// MODERATION_TIMEOUT: bound on one scan request, answer included (long
	// tracks take minutes); 1s..15m, within the scan task's timeout.
	// Default: 5m.
	Timeout time.Duration `env:"MODERATION_TIMEOUT" envDefault:"5m"`

	// LABELER_URL: base URL of the labeler (POST /internal/events,
	// /internal/negated-labels); plyr.fm's labeler is part of the moderation
	// service. Default: MODERATION_URL.
	LabelerURL string `env:"LABELER_URL"`
	// LABELER_KEY: secret sent to the labeler in the same X-Moderation-Key
	// header. Default: MODERATION_KEY.
	LabelerKey string `env:"LABELER_KEY" secret:"true"`
	// LABELER_TIMEOUT: bound on one labeler request; 1s..5m. Default: 30s.
	LabelerTimeout time.Duration `env:"LABELER_TIMEOUT" envDefault:"30s"`

	// COPYRIGHT_SCORE_THRESHOLD: a track is flagged when its dominant match
	// covers at least this percentage of the matched audio; above 0, at most
	// 100. Default: 30.
	ScoreThreshold float64 `env:"COPYRIGHT_SCORE_THRESHOLD" envDefault:"30"`
	// COPYRIGHT_MIX_SONG_THRESHOLD: a track is flagged when at least this
	// many distinct songs match over a sustained stretch (a DJ mix); 1..1000.
	// Default: 3.
	MixSongThreshold int `env:"COPYRIGHT_MIX_SONG_THRESHOLD" envDefault:"3"`

	// AUDIO_URL_ALLOWED_HOSTS: comma-separated hosts audio URLs may point at
	// ("audio.plyr.fm,*.r2.dev"; "*." allows subdomains); https only, and
	// never a private, loopback or link-local address. Required with
	// MODERATION_URL. Default: unset.
	AllowedHosts []string `env:"AUDIO_URL_ALLOWED_HOSTS" envSeparator:","`
	// AUDIO_URL_DEV_HTTP_HOSTS: comma-separated development hosts
	// ("localhost,127.0.0.1,minio") for which http:// and private or loopback
	// addresses are accepted. Default: unset.
	DevHTTPHosts []string `env:"AUDIO_URL_DEV_HTTP_HOSTS" envSeparator:","`
	// AUDIO_URL_PREFLIGHT: send HEAD for the audio before a scan and refuse
	// a redirect off the allowed hosts (the moderation service fetches the
	// audio itself; this catches an allowed URL that redirects elsewhere).
	// Default: true.
	Preflight bool `env:"AUDIO_URL_PREFLIGHT" envDefault:"true"`
}

// Moderation ranges.
const (
	minModerationTimeout = time.Second
	minLabelerTimeout    = time.Second
	maxLabelerTimeout    = 5 * time.Minute
	maxMixSongThreshold  = 1000
)

// maxModerationTimeout is the scan task's own timeout: a scan request that
// outlives its attempt is cut off by it anyway.
var maxModerationTimeout = tasks.CopyrightScanArgs{}.InsertOpts().Timeout

// Enabled reports whether copyright scanning is configured.
func (m Moderation) Enabled() bool { return strings.TrimSpace(m.URL) != "" }

// Validate checks the settings; each error names its variable and the
// allowed values.
func (m Moderation) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }

	if m.Timeout < minModerationTimeout || m.Timeout > maxModerationTimeout {
		bad("MODERATION_TIMEOUT=%s: must be between %s and %s", m.Timeout, minModerationTimeout, maxModerationTimeout)
	}
	if m.LabelerTimeout < minLabelerTimeout || m.LabelerTimeout > maxLabelerTimeout {
		bad("LABELER_TIMEOUT=%s: must be between %s and %s", m.LabelerTimeout, minLabelerTimeout, maxLabelerTimeout)
	}
	if !(m.ScoreThreshold > 0 && m.ScoreThreshold <= 100) {
		bad("COPYRIGHT_SCORE_THRESHOLD=%g: must be a percentage above 0 and at most 100", m.ScoreThreshold)
	}
	if m.MixSongThreshold < 1 || m.MixSongThreshold > maxMixSongThreshold {
		bad("COPYRIGHT_MIX_SONG_THRESHOLD=%d: must be between 1 and %d", m.MixSongThreshold, maxMixSongThreshold)
	}
	for _, v := range []struct{ name, val string }{{"MODERATION_URL", m.URL}, {"LABELER_URL", m.LabelerURL}} {
		if v.val == "" {
			continue
		}
		if err := moderation.CheckServiceURL(v.val); err != nil {
			bad("%s: %v", v.name, err)
		}
	}
	for _, v := range []struct {
		name  string
		hosts []string
	}{{"AUDIO_URL_ALLOWED_HOSTS", m.AllowedHosts}, {"AUDIO_URL_DEV_HTTP_HOSTS", m.DevHTTPHosts}} {
		for _, h := range v.hosts {
			if !moderation.ValidHost(h) {
				bad("%s: %q must be a bare host name or IP address, optionally \"*.\" and a name (no scheme, port or path)", v.name, strings.TrimSpace(h))
			}
		}
	}
	if m.Enabled() {
		if m.Key == "" {
			bad("MODERATION_KEY: is required when MODERATION_URL is set")
		}
		if len(nonEmpty(m.AllowedHosts)) == 0 && len(nonEmpty(m.DevHTTPHosts)) == 0 {
			bad("AUDIO_URL_ALLOWED_HOSTS: is required when MODERATION_URL is set (comma list of hosts audio is served from)")
		}
	} else if m.LabelerURL != "" {
		bad("LABELER_URL: is set but MODERATION_URL is not; set MODERATION_URL to enable copyright scanning")
	}
	return errors.Join(errs...)
}

func nonEmpty(ss []string) []string {
	var out []string
	for _, s := range ss {
		if strings.TrimSpace(s) != "" {
			out = append(out, s)
		}
	}
	return out
}

func redact(s string) string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

// String prints the settings with the keys redacted, so that printing a
// Config never shows them.
func (m Moderation) String() string {
	return fmt.Sprintf("{URL:%s Key:%s Timeout:%s LabelerURL:%s LabelerKey:%s LabelerTimeout:%s ScoreThreshold:%g MixSongThreshold:%d AllowedHosts:%v DevHTTPHosts:%v Preflight:%t}",
		m.URL, redact(m.Key), m.Timeout, m.LabelerURL, redact(m.LabelerKey), m.LabelerTimeout,
		m.ScoreThreshold, m.MixSongThreshold, m.AllowedHosts, m.DevHTTPHosts, m.Preflight)
}

// LogValue logs the settings with the keys redacted.
func (m Moderation) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("url", m.URL),
		slog.String("key", redact(m.Key)),
		slog.Duration("timeout", m.Timeout),
		slog.String("labeler_url", m.LabelerURL),
		slog.String("labeler_key", redact(m.LabelerKey)),
		slog.Duration("labeler_timeout", m.LabelerTimeout),
		slog.Float64("score_threshold", m.ScoreThreshold),
		slog.Int("mix_song_threshold", m.MixSongThreshold),
		slog.Any("allowed_hosts", m.AllowedHosts),
		slog.Any("dev_http_hosts", m.DevHTTPHosts),
		slog.Bool("preflight", m.Preflight),
	)
}
