package config

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func typeOfConfig() reflect.Type { return reflect.TypeOf(Config{}) }

// isCore reports whether v is declared in this file's own types (not a
// task family's).
func isCore(v envVar) bool {
	switch v.Owner.Name() {
	case "Config", "Dashboard", "Timing":
		return true
	}
	return false
}

// The README table is generated from the field comments, so they must be
// accurate: each names its variable, states the default the envDefault tag
// really applies, and states the range Validate really enforces.
func TestDocCommentsMatchBehaviour(t *testing.T) {
	docs := fieldDocs()
	ranges := TimingRanges()
	allowed := map[string]string{
		"WORKER_CONCURRENCY": fmt.Sprintf("Allowed: %d..%d.", MinWorkerConcurrency, MaxWorkerConcurrency),
		"INLINE_CONCURRENCY": fmt.Sprintf("Allowed: %d..%d.", MinInlineConcurrency, MaxInlineConcurrency),
	}
	for name, r := range ranges {
		allowed[name] = "Allowed: " + r.String() + "."
	}
	for _, v := range describe(typeOfConfig()) {
		doc := docs[v.Owner.Name()+"."+v.Field]
		if !isCore(v) {
			if doc == "" {
				t.Errorf("%s (%s.%s) has no doc comment: the README table is generated from it", v.Key, v.Owner.Name(), v.Field)
			}
			continue
		}
		if !strings.HasPrefix(doc, v.Key+": ") {
			t.Errorf("%s: doc comment must start with %q: %q", v.Key, v.Key+": ", doc)
		}
		wantDef := "Default: unset"
		if v.HasDefault {
			wantDef = "Default: " + v.Default + "."
		}
		if !strings.Contains(doc, wantDef) {
			t.Errorf("%s: doc comment lacks %q: %q", v.Key, wantDef, doc)
		}
		if a, ok := allowed[v.Key]; ok && !strings.Contains(doc, a) {
			t.Errorf("%s: doc comment lacks %q: %q", v.Key, a, doc)
		}
	}
}

func TestMarkdownTable(t *testing.T) {
	table := MarkdownTable()
	lines := strings.Split(strings.TrimSpace(table), "\n")
	vars := describe(typeOfConfig())
	if len(lines) != len(vars)+2 {
		t.Fatalf("table has %d lines, want %d (header, rule, one per variable)", len(lines), len(vars)+2)
	}
	byName := map[string]Variable{}
	for _, v := range Variables() {
		byName[v.Name] = v
	}
	for _, c := range []struct{ name, def string }{
		{"TASK_CHECK_INTERVAL", "1s"},
		{"TASKS_NAMESPACE", "plyr"},
		{"API_TOKEN", "unset"},
		{"REDIS_URL", "unset, which starts an embedded in-memory Redis on a loopback port — nothing survives a restart"},
	} {
		v := byName[c.name]
		if v.Default != c.def {
			t.Errorf("%s default %q, want %q", c.name, v.Default, c.def)
		}
		if strings.Contains(v.Doc, "Default:") || strings.HasPrefix(v.Doc, c.name) {
			t.Errorf("%s doc %q still holds the name or the default", c.name, v.Doc)
		}
		if !strings.Contains(table, "| `"+c.name+"` | "+c.def+" | ") {
			t.Errorf("table lacks the %s row with default %q", c.name, c.def)
		}
	}
	if !byName["API_TOKEN"].Secret || byName["TASKS_NAMESPACE"].Secret {
		t.Error("Secret flag wrong")
	}
}
