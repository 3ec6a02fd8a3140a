package logging

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/hibiken/asynq"
)

func jsonLines(t *testing.T, b *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(b)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q is not JSON: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

func TestLevelFilter(t *testing.T) {
	cases := []struct {
		level string
		want  []string // messages that get through, in order
	}{
		{"debug", []string{"d", "i", "w", "e"}},
		{"", []string{"i", "w", "e"}},
		{"info", []string{"i", "w", "e"}},
		{"INFO", []string{"i", "w", "e"}},
		{"warn", []string{"w", "e"}},
		{"warning", []string{"w", "e"}},
		{"error", []string{"e"}},
	}
	for _, format := range []string{"text", "json"} {
		for _, c := range cases {
			t.Run(format+"/"+c.level, func(t *testing.T) {
				var buf bytes.Buffer
				l, err := New(&buf, format, c.level)
				if err != nil {
					t.Fatal(err)
				}
				l.Debug("d")
				l.Info("i")
				l.Warn("w")
				l.Error("e")
				var got []string
				if format == "json" {
					for _, m := range jsonLines(t, &buf) {
						got = append(got, m["msg"].(string))
					}
				} else {
					for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
						f := strings.Fields(line)
						got = append(got, f[len(f)-1])
					}
				}
				if strings.Join(got, ",") != strings.Join(c.want, ",") {
					t.Fatalf("got %v, want %v", got, c.want)
				}
			})
		}
	}
}

func TestJSONFormat(t *testing.T) {
	var buf bytes.Buffer
	l, err := New(&buf, "json", "info")
	if err != nil {
		t.Fatal(err)
	}
	l.Info("task done", "type", "copyright:scan", "attempt", 2)
	lines := jsonLines(t, &buf)
	if len(lines) != 1 {
		t.Fatalf("got %d lines, want 1", len(lines))
	}
	m := lines[0]
	if m["level"] != "INFO" || m["msg"] != "task done" || m["type"] != "copyright:scan" || m["attempt"] != float64(2) {
		t.Fatalf("unexpected record %v", m)
	}
	if _, err := time.Parse(time.RFC3339Nano, m["time"].(string)); err != nil {
		t.Fatalf("time %v: %v", m["time"], err)
	}
}

func TestTextFormatHasNoColourOffTerminal(t *testing.T) {
	var buf bytes.Buffer
	l, err := New(&buf, "text", "info")
	if err != nil {
		t.Fatal(err)
	}
	l.Warn("queue paused", "queue", "plyr:bulk")
	out := buf.String()
	if strings.Contains(out, "\x1b[") {
		t.Fatalf("colour escapes written to a non-terminal: %q", out)
	}
	if !strings.Contains(out, "WRN queue paused queue=plyr:bulk") {
		t.Fatalf("unexpected text record %q", out)
	}
	// A pipe is an *os.File but no terminal.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if IsTerminal(w) {
		t.Fatal("a pipe reported as terminal")
	}
}

// openPTY opens a pseudo-terminal pair with plain syscalls (Linux).
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no /dev/ptmx: %v", err)
	}
	var unlock int32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, m.Fd(), syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); e != 0 {
		m.Close()
		t.Skipf("unlockpt: %v", e)
	}
	var n uint32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, m.Fd(), syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); e != 0 {
		m.Close()
		t.Skipf("ptsname: %v", e)
	}
	s, err := os.OpenFile("/dev/pts/"+itoa(n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		t.Skipf("open pts: %v", err)
	}
	t.Cleanup(func() { s.Close(); m.Close() })
	return m, s
}

func itoa(n uint32) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

func TestTextFormatColoursOnTerminal(t *testing.T) {
	master, slave := openPTY(t)
	if !IsTerminal(slave) {
		t.Fatal("pty slave not reported as terminal")
	}
	l, err := New(slave, "text", "info")
	if err != nil {
		t.Fatal(err)
	}
	l.Error("boom")
	buf := make([]byte, 4096)
	_ = master.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := master.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	if out := string(buf[:n]); !strings.Contains(out, "\x1b[") || !strings.Contains(out, "boom") {
		t.Fatalf("want a coloured record on a terminal, got %q", out)
	}
}

func TestBadFormatAndLevel(t *testing.T) {
	cases := []struct{ format, level, want string }{
		{"xml", "info", `LOG_FORMAT="xml": want text or json`},
		{"text", "verbose", `LOG_LEVEL="verbose": want debug, info, warn or error`},
		{"json", "trace", `LOG_LEVEL="trace": want debug, info, warn or error`},
	}
	for _, c := range cases {
		_, err := New(&bytes.Buffer{}, c.format, c.level)
		if err == nil || err.Error() != c.want {
			t.Errorf("New(%q, %q) error = %v, want %q", c.format, c.level, err, c.want)
		}
	}
}

func TestAsynqLogger(t *testing.T) {
	var buf bytes.Buffer
	l, err := New(&buf, "json", "info")
	if err != nil {
		t.Fatal(err)
	}
	al := AsynqLogger(l)
	al.Debug("dropped at info")
	al.Info("Starting processing")
	al.Warn("Retry exhausted for task id=abc") // the task's outcome line says it: debug
	al.Warn("Quitting worker. task id=", "abc")
	al.Error("Dequeue error: ", "EOF")
	al.Fatal("unrecoverable") // must log and return, never exit the test binary
	lines := jsonLines(t, &buf)
	want := []struct{ level, msg string }{
		{"INFO", "Starting processing"},
		{"WARN", "Quitting worker. task id=abc"},
		{"ERROR", "Dequeue error: EOF"},
		{"ERROR", "unrecoverable"},
	}
	if len(lines) != len(want) {
		t.Fatalf("got %d records, want %d: %v", len(lines), len(want), lines)
	}
	for i, w := range want {
		m := lines[i]
		if m["level"] != w.level || m["msg"] != w.msg || m["component"] != "asynq" {
			t.Errorf("record %d = %v, want level %s msg %q component asynq", i, m, w.level, w.msg)
		}
	}
	if lines[3]["fatal"] != true {
		t.Errorf("Fatal record lacks fatal=true: %v", lines[3])
	}
}

func TestAsynqLevel(t *testing.T) {
	cases := map[string]asynq.LogLevel{
		"debug": asynq.DebugLevel,
		"info":  asynq.InfoLevel,
		"warn":  asynq.WarnLevel,
		"error": asynq.ErrorLevel,
	}
	for level, want := range cases {
		l, err := New(&bytes.Buffer{}, "json", level)
		if err != nil {
			t.Fatal(err)
		}
		if got := AsynqLevel(l); got != want {
			t.Errorf("AsynqLevel(%s) = %v, want %v", level, got, want)
		}
	}
	if got := AsynqLevel(slog.New(slog.DiscardHandler)); got != asynq.ErrorLevel {
		t.Errorf("AsynqLevel(discard) = %v, want error", got)
	}
}

func TestGoRedisLogger(t *testing.T) {
	var buf bytes.Buffer
	l, err := New(&buf, "json", "debug")
	if err != nil {
		t.Fatal(err)
	}
	g := GoRedisLogger(l)
	g.Printf(context.Background(), "sentinel: new master=%q addr=%q", "mymaster", "127.0.0.1:7111")
	g.Printf(context.Background(), "redis: connection pool: failed to dial after %d attempts: %v", 5, "refused")
	lines := jsonLines(t, &buf)
	if len(lines) != 2 {
		t.Fatalf("got %d records, want 2", len(lines))
	}
	if lines[0]["level"] != "DEBUG" || lines[0]["msg"] != `sentinel: new master="mymaster" addr="127.0.0.1:7111"` || lines[0]["component"] != "go-redis" {
		t.Errorf("bookkeeping record = %v, want debug", lines[0])
	}
	if lines[1]["level"] != "WARN" || !strings.Contains(lines[1]["msg"].(string), "failed to dial after 5 attempts") {
		t.Errorf("failure record = %v, want warn", lines[1])
	}
	// At info, bookkeeping is dropped.
	buf.Reset()
	l, _ = New(&buf, "json", "info")
	GoRedisLogger(l).Printf(context.Background(), "sentinel: selected addr=%s", "x")
	if buf.Len() != 0 {
		t.Errorf("debug line printed at info: %s", buf.String())
	}
}
