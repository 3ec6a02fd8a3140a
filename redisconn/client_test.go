package redisconn

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/plyr-fm/plyrtasks/internal/redistest"
	"github.com/plyr-fm/plyrtasks/logging"
	"github.com/redis/go-redis/v9"
)

var srv *redistest.Server

func TestMain(m *testing.M) {
	// go-redis logs expected failures (the wrong-password cases) itself.
	redis.SetLogger(logging.GoRedisLogger(logging.Discard()))
	os.Exit(redistest.MustMain(m, &srv))
}

func TestSingleRealRedis(t *testing.T) {
	db := srv.DB(t)
	s, err := Parse(srv.URL(db))
	if err != nil {
		t.Fatal(err)
	}
	c := s.Client()
	defer c.Close()
	checkRedis(t, c)
	ctx := context.Background()
	if err := c.Set(ctx, "which-db", "mine", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if got := srv.Client(t, db).Get(ctx, "which-db").Val(); got != "mine" {
		t.Fatalf("key written through the spec not in database %d", db)
	}
	asynqRoundTrip(t, c, "plyr:default")
}

func TestSingleCredentials(t *testing.T) {
	ctx := context.Background()
	admin := srv.Client(t, 0)
	if err := admin.Do(ctx, "ACL", "SETUSER", "plyr-single", "on", ">p@ss/w0rd", "~*", "&*", "+@all").Err(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Do(ctx, "ACL", "DELUSER", "plyr-single") })
	db := srv.DB(t)
	ok, err := Parse(fmt.Sprintf("redis://plyr-single:p%%40ss%%2Fw0rd@%s/%d", srv.Addr, db))
	if err != nil {
		t.Fatal(err)
	}
	c := ok.Client()
	defer c.Close()
	if who, err := c.Do(ctx, "ACL", "WHOAMI").Text(); err != nil || who != "plyr-single" {
		t.Fatalf("ACL WHOAMI = %q, %v; want plyr-single", who, err)
	}
	bad, _ := Parse(fmt.Sprintf("redis://plyr-single:wrong@%s/%d", srv.Addr, db))
	bc := bad.Client()
	defer bc.Close()
	if err := bc.Ping(ctx).Err(); err == nil || !strings.Contains(err.Error(), "WRONGPASS") {
		t.Fatalf("wrong password: %v, want WRONGPASS", err)
	}
}

// silentServer accepts connections and never answers.
func silentServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				close(done)
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}

// A Redis that stops answering costs a caller the read timeout (times the
// retries), not forever; a context deadline cuts it shorter.
func TestTimeoutsBoundAHungRedis(t *testing.T) {
	addr := silentServer(t)
	s, err := Parse("redis://" + addr + "?read_timeout=200ms&write_timeout=200ms")
	if err != nil {
		t.Fatal(err)
	}
	c := s.Client()
	defer c.Close()
	start := time.Now()
	err = c.Ping(context.Background()).Err()
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("Ping on a silent server: %v, want a timeout", err)
	}
	// One try costs 200ms; with the retries and back-off it stays far
	// below go-redis' 5s default read timeout.
	if d := time.Since(start); d > 2500*time.Millisecond {
		t.Fatalf("Ping took %v with read_timeout=200ms", d)
	}

	def, _ := Parse("redis://" + addr)
	dc := def.Client()
	defer dc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	start = time.Now()
	if err := dc.Ping(ctx).Err(); err == nil {
		t.Fatal("Ping on a silent server succeeded")
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Ping with a 150ms context deadline took %v (default read timeout %v)", d, DefaultReadTimeout)
	}
}

// repoRoot walks up from the working directory to go.mod.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test directory")
		}
		dir = parent
	}
}

// sharedScript returns ../shared/redis/NAME, skipping loudly when absent.
func sharedScript(t *testing.T, name string) string {
	t.Helper()
	p := filepath.Join(repoRoot(t), "..", "shared", "redis", name)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("SKIPPED: %s not found (%v): the shared Redis scripts live in ../shared next to the repository; without them Sentinel/Cluster support is NOT tested", p, err)
	}
	if _, err := exec.LookPath("redis-cli"); err != nil {
		t.Skipf("SKIPPED: redis-cli not on PATH: Sentinel/Cluster support is NOT tested")
	}
	return p
}

// freeBase picks a base port whose base+offsets are all free on loopback.
// Bases stay below Linux's ephemeral range (32768+), bus ports included.
func freeBase(t *testing.T, lo, hi int, offsets ...int) int {
	t.Helper()
	for range 50 {
		base := lo + rand.IntN(hi-lo)
		free := true
		for _, off := range offsets {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", base+off))
			if err != nil {
				free = false
				break
			}
			l.Close()
		}
		if free {
			return base
		}
	}
	t.Fatal("no free port block found")
	return 0
}

// runScript runs a shared script and returns its last output line.
func runScript(t *testing.T, script string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "bash", append([]string{script}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", filepath.Base(script), args, err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// stopScript stops what a shared script started in dir and waits until its
// daemons have exited (they write files until then, which would race the
// temp dir's removal).
func stopScript(t *testing.T, script, dir string) {
	t.Helper()
	var pids []int
	for _, pattern := range []string{"*.pid", "*/*.pid"} {
		files, _ := filepath.Glob(filepath.Join(dir, pattern))
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
				pids = append(pids, pid)
			}
		}
	}
	runScript(t, script, "stop", dir)
	deadline := time.Now().Add(15 * time.Second)
	for _, pid := range pids {
		for syscall.Kill(pid, 0) == nil {
			if time.Now().After(deadline) {
				t.Errorf("process %d from %s still running 15s after stop", pid, filepath.Base(script))
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

func redisDo(t *testing.T, addr string, args ...any) {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	if err := c.Do(context.Background(), args...).Err(); err != nil {
		t.Fatalf("%s %v: %v", addr, args, err)
	}
}

func TestSentinel(t *testing.T) {
	script := sharedScript(t, "sentinel.sh")
	dir := t.TempDir()
	base := freeBase(t, 22000, 28000, 0, 1, 10, 11, 12)
	url := runScript(t, script, "start", dir, fmt.Sprint(base))
	t.Cleanup(func() { stopScript(t, script, dir) })
	if !strings.HasPrefix(url, "redis-sentinel://") {
		t.Fatalf("sentinel.sh printed %q, want a redis-sentinel:// URL", url)
	}
	primary := fmt.Sprintf("127.0.0.1:%d", base)
	var sentinels []string
	for i := 10; i <= 12; i++ {
		sentinels = append(sentinels, fmt.Sprintf("127.0.0.1:%d", base+i))
	}

	t.Run("plain", func(t *testing.T) {
		s, err := Parse(url)
		if err != nil {
			t.Fatal(err)
		}
		if s.Mode != Sentinel || len(s.Addrs) != 3 || s.MasterName != "mymaster" {
			t.Fatalf("parsed %+v", s)
		}
		c := s.Client()
		defer c.Close()
		checkRedis(t, c)
		asynqRoundTrip(t, c, "plyr:default")
	})

	// The fields asynq.ParseRedisURI loses, against real servers: the
	// primary's ACL user and password, the database number, and the
	// Sentinels' own user and password.
	redisDo(t, primary, "ACL", "SETUSER", "plyr", "on", ">primary-pw", "~*", "&*", "+@all")
	for _, a := range sentinels {
		redisDo(t, a, "ACL", "SETUSER", "sentuser", "on", ">sentinel-pw", "+@all")
	}
	hosts := strings.Join(sentinels, ",")
	withCreds := func(primaryPW, sentinelPW string) string {
		return fmt.Sprintf("redis-sentinel://plyr:%s@%s/7?master=mymaster&sentinel_username=sentuser&sentinel_password=%s",
			primaryPW, hosts, sentinelPW)
	}
	t.Run("credentials and db", func(t *testing.T) {
		s, err := Parse(withCreds("primary-pw", "sentinel-pw"))
		if err != nil {
			t.Fatal(err)
		}
		c := s.Client()
		defer c.Close()
		ctx := context.Background()
		if who, err := c.Do(ctx, "ACL", "WHOAMI").Text(); err != nil || who != "plyr" {
			t.Fatalf("ACL WHOAMI on the primary = %q, %v; want plyr", who, err)
		}
		if err := c.Set(ctx, "sentinel-db-check", "7", 0).Err(); err != nil {
			t.Fatal(err)
		}
		direct := redis.NewClient(&redis.Options{Addr: primary, DB: 7})
		defer direct.Close()
		if got := direct.Get(ctx, "sentinel-db-check").Val(); got != "7" {
			t.Fatalf("key not in database 7 of the primary (got %q)", got)
		}
		asynqRoundTrip(t, c, "plyr:critical")
	})
	for name, u := range map[string]string{
		"wrong sentinel password": withCreds("primary-pw", "nope"),
		"wrong primary password":  withCreds("nope", "sentinel-pw"),
	} {
		t.Run(name, func(t *testing.T) {
			s, err := Parse(u)
			if err != nil {
				t.Fatal(err)
			}
			c := s.Client()
			defer c.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := c.Ping(ctx).Err(); err == nil {
				t.Fatal("Ping succeeded with a wrong password: the credential is not being sent")
			}
		})
	}
}

func TestCluster(t *testing.T) {
	script := sharedScript(t, "cluster.sh")
	dir := t.TempDir()
	base := freeBase(t, 20000, 22000, 0, 1, 2, 3, 4, 5, 10000, 10001, 10002, 10003, 10004, 10005)
	addrs := runScript(t, script, "start", dir, fmt.Sprint(base))
	t.Cleanup(func() { stopScript(t, script, dir) })
	nodes := strings.Split(addrs, ",")
	if len(nodes) != 6 {
		t.Fatalf("cluster.sh printed %q, want 6 addresses", addrs)
	}

	t.Run("plain", func(t *testing.T) {
		s, err := Parse("redis-cluster://" + addrs)
		if err != nil {
			t.Fatal(err)
		}
		c := s.Client()
		defer c.Close()
		if _, ok := c.(*redis.ClusterClient); !ok {
			t.Fatalf("Client() is %T", c)
		}
		checkRedis(t, c)
		// Queues land in different slots; asynq's hash tags keep each
		// queue's keys together.
		asynqRoundTrip(t, c, "plyr:default")
		asynqRoundTrip(t, c, "plyr:bulk")
	})

	for _, n := range nodes {
		redisDo(t, n, "ACL", "SETUSER", "plyr", "on", ">cluster-pw", "~*", "&*", "+@all")
	}
	t.Run("credentials", func(t *testing.T) {
		s, err := Parse("redis+cluster://plyr:cluster-pw@" + nodes[0] + "," + nodes[1])
		if err != nil {
			t.Fatal(err)
		}
		c := s.Client()
		defer c.Close()
		if who, err := c.Do(context.Background(), "ACL", "WHOAMI").Text(); err != nil || who != "plyr" {
			t.Fatalf("ACL WHOAMI = %q, %v; want plyr", who, err)
		}
		checkRedis(t, c)
	})
	t.Run("wrong password", func(t *testing.T) {
		s, _ := Parse("redis-cluster://plyr:nope@" + nodes[0])
		c := s.Client()
		defer c.Close()
		if err := c.Ping(context.Background()).Err(); err == nil || !strings.Contains(err.Error(), "WRONGPASS") {
			t.Fatalf("wrong password: %v, want WRONGPASS", err)
		}
	})
}
