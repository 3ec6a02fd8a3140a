package config

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/caarlos0/env/v10"
)

func parseModeration(t *testing.T, environ map[string]string) Moderation {
	t.Helper()
	var m Moderation
	if err := env.ParseWithOptions(&m, env.Options{Environment: environ}); err != nil {
		t.Fatalf("parse %v: %v", environ, err)
	}
	return m
}

func TestModerationDefaults(t *testing.T) {
	m := parseModeration(t, nil)
	want := Moderation{Timeout: 5 * time.Minute, LabelerTimeout: 30 * time.Second, ScoreThreshold: 30, MixSongThreshold: 3, Preflight: true}
	if fmt.Sprint(m) != fmt.Sprint(want) {
		t.Errorf("defaults = %v, want %v", m, want)
	}
	if m.Enabled() {
		t.Error("enabled without MODERATION_URL")
	}
	if err := m.Validate(); err != nil {
		t.Errorf("defaults do not validate: %v", err)
	}
}

func TestModerationParse(t *testing.T) {
	m := parseModeration(t, map[string]string{
		"MODERATION_URL":               "https://moderation.plyr.test",
		"MODERATION_KEY":               "k-123",
		"MODERATION_TIMEOUT":           "10m",
		"COPYRIGHT_SCORE_THRESHOLD":    "70",
		"COPYRIGHT_MIX_SONG_THRESHOLD": "4",
		"AUDIO_URL_ALLOWED_HOSTS":      "audio.plyr.fm,*.r2.dev",
		"AUDIO_URL_DEV_HTTP_HOSTS":     "localhost,127.0.0.1",
		"AUDIO_URL_PREFLIGHT":          "false",
	})
	if !m.Enabled() || m.Timeout != 10*time.Minute || m.ScoreThreshold != 70 || m.MixSongThreshold != 4 || m.Preflight ||
		fmt.Sprint(m.AllowedHosts) != "[audio.plyr.fm *.r2.dev]" || fmt.Sprint(m.DevHTTPHosts) != "[localhost 127.0.0.1]" {
		t.Errorf("parsed %v", m)
	}
	if err := m.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

func TestModerationValidate(t *testing.T) {
	base := map[string]string{
		"MODERATION_URL":          "https://moderation.plyr.test",
		"MODERATION_KEY":          "k",
		"AUDIO_URL_ALLOWED_HOSTS": "audio.plyr.fm",
	}
	tests := []struct {
		name string
		set  map[string]string
		want string // "" = valid
	}{
		{name: "valid", set: nil},
		{name: "labeler elsewhere", set: map[string]string{"LABELER_URL": "http://labeler.internal:8080", "LABELER_KEY": "l"}},
		{name: "no key", set: map[string]string{"MODERATION_KEY": ""}, want: "MODERATION_KEY: is required when MODERATION_URL is set"},
		{name: "no allowed hosts", set: map[string]string{"AUDIO_URL_ALLOWED_HOSTS": ""}, want: "AUDIO_URL_ALLOWED_HOSTS: is required"},
		{name: "dev hosts suffice", set: map[string]string{"AUDIO_URL_ALLOWED_HOSTS": "", "AUDIO_URL_DEV_HTTP_HOSTS": "localhost"}},
		{name: "URL not http", set: map[string]string{"MODERATION_URL": "moderation.plyr.test"}, want: "MODERATION_URL: must be an http(s) URL"},
		{name: "key in URL", set: map[string]string{"MODERATION_URL": "https://moderation.plyr.test/?key=k"}, want: "MODERATION_URL: must not carry credentials, a query"},
		{name: "bad labeler URL", set: map[string]string{"LABELER_URL": "ftp://x"}, want: "LABELER_URL: must be an http(s) URL"},
		{name: "labeler without moderation", set: map[string]string{"MODERATION_URL": "", "LABELER_URL": "https://l.test"}, want: "LABELER_URL: is set but MODERATION_URL is not"},
		{name: "timeout too short", set: map[string]string{"MODERATION_TIMEOUT": "500ms"}, want: "MODERATION_TIMEOUT=500ms: must be between 1s and 15m0s"},
		{name: "timeout beyond the task's", set: map[string]string{"MODERATION_TIMEOUT": "16m"}, want: "MODERATION_TIMEOUT=16m0s: must be between 1s and 15m0s"},
		{name: "labeler timeout", set: map[string]string{"LABELER_TIMEOUT": "10m"}, want: "LABELER_TIMEOUT=10m0s: must be between 1s and 5m0s"},
		{name: "threshold zero", set: map[string]string{"COPYRIGHT_SCORE_THRESHOLD": "0"}, want: "COPYRIGHT_SCORE_THRESHOLD=0: must be a percentage"},
		{name: "threshold over 100", set: map[string]string{"COPYRIGHT_SCORE_THRESHOLD": "101"}, want: "COPYRIGHT_SCORE_THRESHOLD=101"},
		{name: "threshold 100", set: map[string]string{"COPYRIGHT_SCORE_THRESHOLD": "100"}},
		{name: "mix zero", set: map[string]string{"COPYRIGHT_MIX_SONG_THRESHOLD": "0"}, want: "COPYRIGHT_MIX_SONG_THRESHOLD=0: must be between 1 and 1000"},
		{name: "host with scheme", set: map[string]string{"AUDIO_URL_ALLOWED_HOSTS": "https://audio.plyr.fm"}, want: `AUDIO_URL_ALLOWED_HOSTS: "https://audio.plyr.fm" must be a bare host name`},
		{name: "host with port", set: map[string]string{"AUDIO_URL_DEV_HTTP_HOSTS": "localhost:9000"}, want: `AUDIO_URL_DEV_HTTP_HOSTS: "localhost:9000" must be a bare host name`},
		{name: "trailing comma", set: map[string]string{"AUDIO_URL_ALLOWED_HOSTS": "audio.plyr.fm,"}},
		{name: "IPv6 host", set: map[string]string{"AUDIO_URL_DEV_HTTP_HOSTS": "::1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			environ := map[string]string{}
			for k, v := range base {
				environ[k] = v
			}
			for k, v := range tt.set {
				environ[k] = v
			}
			err := parseModeration(t, environ).Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want valid", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestModerationNeverPrintsKeys(t *testing.T) {
	m := parseModeration(t, map[string]string{"MODERATION_URL": "https://m.test", "MODERATION_KEY": "hunter2-moderation", "LABELER_KEY": "hunter2-labeler"})
	var logged strings.Builder
	slog.New(slog.NewTextHandler(&logged, nil)).Info("config", "moderation", m)
	c := Config{Moderation: m}
	for _, out := range []string{fmt.Sprint(m), fmt.Sprintf("%+v", c), fmt.Sprintf("%v", &c), logged.String()} {
		if strings.Contains(out, "hunter2") {
			t.Errorf("printed a key: %s", out)
		}
		if !strings.Contains(out, "redacted") {
			t.Errorf("no redaction marker in %s", out)
		}
	}
	red := c.Redacted()
	if red["MODERATION_KEY"] != "set" || red["LABELER_KEY"] != "set" {
		t.Errorf("Redacted = %v", red)
	}
}

func TestModerationVariablesDocumented(t *testing.T) {
	want := map[string]string{
		"MODERATION_URL": "unset (disabled)", "MODERATION_KEY": "unset", "MODERATION_TIMEOUT": "5m",
		"LABELER_URL": "MODERATION_URL", "LABELER_KEY": "MODERATION_KEY", "LABELER_TIMEOUT": "30s",
		"COPYRIGHT_SCORE_THRESHOLD": "30", "COPYRIGHT_MIX_SONG_THRESHOLD": "3",
		"AUDIO_URL_ALLOWED_HOSTS": "unset", "AUDIO_URL_DEV_HTTP_HOSTS": "unset", "AUDIO_URL_PREFLIGHT": "true",
	}
	got := map[string]Variable{}
	for _, v := range Variables() {
		got[v.Name] = v
	}
	for name, def := range want {
		v, ok := got[name]
		if !ok || v.Default != def || v.Doc == "" {
			t.Errorf("%s documented as %+v, want default %q and a description", name, v, def)
		}
	}
	if !got["MODERATION_KEY"].Secret || !got["LABELER_KEY"].Secret {
		t.Error("the keys are not marked secret")
	}
}
