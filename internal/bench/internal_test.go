package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		var out []time.Duration
		for _, x := range v {
			out = append(out, time.Duration(x)*time.Millisecond)
		}
		return out
	}
	tests := []struct {
		in   []time.Duration
		q    float64
		want time.Duration
	}{
		{nil, 0.5, 0},
		{ms(7), 0.99, 7 * time.Millisecond},
		{ms(4, 1, 3, 2), 0.5, 2 * time.Millisecond},
		{ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 0.99, 10 * time.Millisecond},
		{ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 0.9, 9 * time.Millisecond},
	}
	for _, tt := range tests {
		if got := percentile(tt.in, tt.q); got != tt.want {
			t.Errorf("percentile(%v, %v) = %s, want %s", tt.in, tt.q, got, tt.want)
		}
	}
}

func TestParseCommandCalls(t *testing.T) {
	info := "# Commandstats\r\ncmdstat_evalsha:calls=12,usec=1,usec_per_call=0.1,rejected_calls=0,failed_calls=0\r\n" +
		"cmdstat_lpush:calls=5,usec=1\r\ncmdstat_info:calls=99,usec=1\r\ncmdstat_config|resetstat:calls=3,usec=1\r\n"
	got, err := parseCommandCalls(info)
	if err != nil || got != 17 {
		t.Errorf("parseCommandCalls = %d, %v; want 17 (INFO and CONFIG left out)", got, err)
	}
	if _, err := parseCommandCalls("cmdstat_get:calls=x,usec=1"); err == nil {
		t.Error("a bad count: want an error")
	}
}

// The proxy counts what a client sends: a pipeline of n is n, a script
// call one, inline commands one, whatever the payload holds.
func TestCountingProxy(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rs, err := startRedis(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.stop()
	p, err := newCountingProxy(rs.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	conn, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	replies := bufio.NewReader(conn)
	resp := func(args ...string) string {
		s := fmt.Sprintf("*%d\r\n", len(args))
		for _, a := range args {
			s += fmt.Sprintf("$%d\r\n%s\r\n", len(a), a)
		}
		return s
	}
	tests := []struct {
		name    string
		send    string
		replies int // reply lines to read (each reply here is one line)
		want    int64
	}{
		{"one command", resp("SET", "k", "v"), 1, 1},
		{"a pipeline of three", resp("INCR", "a") + resp("INCR", "a") + resp("EXISTS", "k"), 3, 3},
		{"a script calling three commands", resp("EVAL", `redis.call("SET","x","1"); redis.call("GET","x"); return redis.call("DEL","x")`, "0"), 1, 1},
		{"a value holding CRLF and a RESP header", resp("SET", "k", "a\r\n*3\r\n$1\r\nb"), 1, 1},
		{"an inline command", "PING\r\n", 1, 1},
	}
	for _, tt := range tests {
		p.Reset()
		if _, err := io.WriteString(conn, tt.send); err != nil {
			t.Fatal(err)
		}
		for range tt.replies {
			line, err := replies.ReadString('\n')
			if err != nil || strings.HasPrefix(line, "-") {
				t.Fatalf("%s: reply %q, %v", tt.name, line, err)
			}
		}
		if got := p.Count(); got != tt.want {
			t.Errorf("%s: counted %d, want %d", tt.name, got, tt.want)
		}
	}
}

func TestProcMemoryReadsThisProcess(t *testing.T) {
	rss, hwm, err := procMemory(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if rss <= 0 || hwm < rss {
		t.Errorf("rss %d, hwm %d: want 0 < rss <= hwm", rss, hwm)
	}
}
