package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/plyr-fm/plyrtasks/config"
	"github.com/plyr-fm/plyrtasks/tasks"
)

func TestChooseTarget(t *testing.T) {
	load := func(env map[string]string) *config.Config {
		t.Helper()
		cfg, err := config.LoadEnv(env)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	embedded := load(map[string]string{})
	anyPort := load(map[string]string{"HTTP_ADDR": ":9090", "API_TOKEN": "0123456789abcdef", "DASHBOARD_USER": "a", "DASHBOARD_PASSWORD": "password1"})
	redisCfg := load(map[string]string{"REDIS_URL": "redis://127.0.0.1:6379/0"})
	noEnv := func(string) string { return "" }
	apiEnv := func(k string) string {
		if k == envAPIURL {
			return "http://api.internal:8080"
		}
		return ""
	}
	tests := []struct {
		name   string
		flags  targetFlags
		cfg    *config.Config
		getenv func(string) string
		want   choice
		err    string
	}{
		{"embedded defaults: the local serve", targetFlags{}, embedded, noEnv, choice{apiURL: "http://127.0.0.1:8080"}, ""},
		{"unspecified host becomes loopback", targetFlags{}, anyPort, noEnv, choice{apiURL: "http://127.0.0.1:9090"}, ""},
		{"PLYRTASKS_API_URL", targetFlags{}, embedded, apiEnv, choice{apiURL: "http://api.internal:8080"}, ""},
		{"--api wins over REDIS_URL", targetFlags{apiURL: "http://x:1"}, redisCfg, noEnv, choice{apiURL: "http://x:1"}, ""},
		{"REDIS_URL set: direct", targetFlags{}, redisCfg, apiEnv, choice{direct: true}, ""},
		{"--direct with REDIS_URL", targetFlags{direct: true}, redisCfg, noEnv, choice{direct: true}, ""},
		{"--direct without REDIS_URL", targetFlags{direct: true}, embedded, noEnv, choice{}, "--direct needs REDIS_URL"},
		{"--api and --direct", targetFlags{apiURL: "http://x:1", direct: true}, redisCfg, noEnv, choice{}, "exclude each other"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := chooseTarget(tt.flags, tt.cfg, tt.getenv)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("chooseTarget = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestDialAddr(t *testing.T) {
	tests := []struct{ in, want string }{
		{"127.0.0.1:8080", "127.0.0.1:8080"},
		{":8080", "127.0.0.1:8080"},
		{"0.0.0.0:8080", "127.0.0.1:8080"},
		{"[::]:8080", "127.0.0.1:8080"},
		{"[::1]:8080", "[::1]:8080"},
		{"localhost:80", "localhost:80"},
	}
	for _, tt := range tests {
		if got := dialAddr(tt.in); got != tt.want {
			t.Errorf("dialAddr(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestFlagError(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{&tasks.FieldError{Field: "process_at", Reason: "bad"}, "--at: bad"},
		{&tasks.FieldError{Field: "unique_for", Reason: "bad"}, "--unique-for: bad"},
		{&tasks.FieldError{Field: "other", Reason: "bad"}, "other: bad"},
		{errors.New("plain"), "plain"},
	}
	for _, tt := range tests {
		if got := flagError(tt.err).Error(); got != tt.want {
			t.Errorf("flagError(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

func TestReadPayload(t *testing.T) {
	dir := t.TempDir()
	file := dir + "/p.json"
	if err := writeFile(file, `{"a":1}`); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, arg, stdin, want, err string
	}{
		{"inline", `{"x":2}`, "", `{"x":2}`, ""},
		{"stdin", "-", `{"y":3}`, `{"y":3}`, ""},
		{"file", "@" + file, "", `{"a":1}`, ""},
		{"missing file", "@" + dir + "/nope", "", "", "read payload"},
		{"too large on stdin", "-", strings.Repeat("x", tasks.MaxPayloadBytes+1), "", "payload too large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readPayload(tt.arg, strings.NewReader(tt.stdin))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || string(got) != tt.want {
				t.Fatalf("readPayload = %q, %v", got, err)
			}
		})
	}
}
