package main

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
)

func TestVersion(t *testing.T) {
	var out bytes.Buffer
	root := newRootCmd(&out, &out)
	root.SetArgs([]string{"version"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	// go test builds without VCS stamping or a module version: "dev".
	if !regexp.MustCompile(`^plyrtasks dev .*go1\.\d+.* \w+/\w+\n$`).MatchString(out.String()) {
		t.Errorf("version = %q", out.String())
	}
}

// Every command explains itself in --help.
func TestEveryCommandHasHelp(t *testing.T) {
	root := newRootCmd(&bytes.Buffer{}, &bytes.Buffer{})
	want := []string{"serve", "worker", "enqueue", "status", "cancel", "migrate", "config", "healthcheck", "version"}
	for _, name := range want {
		cmd, _, err := root.Find([]string{name})
		if err != nil || cmd.Name() != name {
			t.Errorf("no %s command: %v", name, err)
			continue
		}
		if cmd.Short == "" || (name != "version" && len(cmd.Long) < 80) {
			t.Errorf("%s: help too thin (Short %q, Long %d chars)", name, cmd.Short, len(cmd.Long))
		}
	}
}

func TestConfigCommandRedactsSecrets(t *testing.T) {
	t.Setenv("API_TOKEN", "super-secret-token-123")
	t.Setenv("REDIS_URL", "redis://:hunter2hunter2@127.0.0.1:6379/0")
	var out bytes.Buffer
	root := newRootCmd(&out, &out)
	root.SetArgs([]string{"config"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	if strings.Contains(s, "super-secret-token-123") || strings.Contains(s, "hunter2hunter2") {
		t.Fatalf("config prints a secret:\n%s", s)
	}
	for _, want := range []string{"API_TOKEN=set\n", "TASKS_NAMESPACE=plyr\n", "HTTP_ADDR=127.0.0.1:8080\n"} {
		if !strings.Contains(s, want) {
			t.Errorf("config output lacks %q", want)
		}
	}
}
