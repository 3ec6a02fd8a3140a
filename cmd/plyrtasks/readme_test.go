package main

import (
	"os"
	"strings"
	"testing"

	"github.com/plyr-fm/plyrtasks/config"
)

func readRepoFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("../../" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The README's configuration table is config.MarkdownTable(): every
// variable, its default and meaning, straight from config/*.go.
func TestREADMEConfigTableIsCurrent(t *testing.T) {
	readme := readRepoFile(t, "README.md")
	const start, end = "<!-- config-table:start -->\n", "<!-- config-table:end -->"
	i, j := strings.Index(readme, start), strings.Index(readme, end)
	if i < 0 || j < i {
		t.Fatalf("README.md lacks the %q … %q markers", start, end)
	}
	if got, want := readme[i+len(start):j], config.MarkdownTable(); got != want {
		t.Errorf("README.md's configuration table is out of date: replace it with the output of\n  go run ./cmd/plyrtasks config --markdown")
	}
}

// CI runs exactly the test command the README shows.
func TestCIRunsTheREADMETestCommand(t *testing.T) {
	readme := readRepoFile(t, "README.md")
	var cmd string
	for _, line := range strings.Split(readme, "\n") {
		if strings.HasPrefix(line, "go vet ./...") {
			cmd = line
			break
		}
	}
	if cmd == "" {
		t.Fatal("README.md shows no test command (a line starting with `go vet ./...`)")
	}
	ci := readRepoFile(t, ".ci/run")
	if !strings.Contains("\n"+ci+"\n", "\n"+cmd+"\n") {
		t.Errorf(".ci/run does not run the README's test command as a line of its own:\n  %s", cmd)
	}
}
