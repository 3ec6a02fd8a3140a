package faults

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/redis/go-redis/v9"

	"github.com/plyr-fm/plyrtasks/client"
	"github.com/plyr-fm/plyrtasks/internal/proctest"
	"github.com/plyr-fm/plyrtasks/internal/redistest"
	"github.com/plyr-fm/plyrtasks/moderation/moderationtest"
	"github.com/plyr-fm/plyrtasks/redisconn"
	"github.com/plyr-fm/plyrtasks/storage"
	"github.com/plyr-fm/plyrtasks/store"
	"github.com/plyr-fm/plyrtasks/store/storetest"
	"github.com/plyr-fm/plyrtasks/tasks"
)

// bin is the plyrtasks binary, built once for the package.
var bin *proctest.Binary

func TestMain(m *testing.M) { os.Exit(proctest.Main(m, &bin)) }

const (
	moderationKey = "faults-moderation-key"
	s3Bucket      = "plyr-faults"
	s3KeyID       = "faults-key-id"
	s3Secret      = "faults-secret"
)

// quiet is a logger for in-test clients: the processes' logs are the ones
// that matter.
var quiet = slog.New(slog.DiscardHandler)

// world is one scenario's installation: its own redis-server (AOF on), a
// SQLite store in a data directory the test and the worker processes share,
// and, when asked for, the external services behind hold proxies.
type world struct {
	ns    string
	redis *redistest.Server
	rdb   *redis.Client
	// uc is the test's client of the world's Redis, whatever its kind
	// (rdb is nil on a cluster).
	uc      redis.UniversalClient
	dataDir string
	st      store.Store
	insp    *asynq.Inspector
	prod    *client.Client
	env     proctest.Env

	mod      *moderationtest.Server // with Options.Moderation
	modProxy *holdProxy
	s3       *fakeS3 // with Options.S3
}

type worldOptions struct {
	// Moderation runs the moderation/labeler fake behind a hold proxy
	// (gates "scan" and "negated") and configures the workers for it.
	Moderation bool
	// S3 runs gofakes3 behind a hold proxy (gate "part": upload parts) as
	// the workers' STORAGE_URL.
	S3 bool
	// ScanGate, when set, names the gate of a scan by its audio URL
	// (default "scan").
	ScanGate func(audioURL string) string
	// Redis, when set, replaces the world's own redis-server (the Redis
	// restart scenario passes one it can stop and start).
	Redis *redistest.Server
	// RedisURL, when set, points the world at a Redis deployment the test
	// started itself (a Sentinel group, a cluster): no redis-server of its
	// own (w.redis is nil); the processes get REDIS_URL and the test talks
	// to it through redisconn's client for the same URL (w.rdb is nil on a
	// cluster: use w.uc).
	RedisURL string
}

func newWorld(t *testing.T, o worldOptions) *world {
	t.Helper()
	w := &world{ns: "f" + randomHex(4), dataDir: t.TempDir()}
	redisURL := o.RedisURL
	if redisURL != "" {
		spec, err := redisconn.Parse(redisURL)
		if err != nil {
			t.Fatal(err)
		}
		w.uc = spec.Client()
		w.rdb, _ = w.uc.(*redis.Client)
	} else {
		w.redis = o.Redis
		if w.redis == nil {
			w.redis = redistest.Start(t, redistest.Options{AOF: true})
		}
		redisURL = fmt.Sprintf("redis://%s/0", w.redis.Addr)
		w.rdb = redis.NewClient(&redis.Options{Addr: w.redis.Addr})
		w.uc = w.rdb
	}
	t.Cleanup(func() { _ = w.uc.Close() })
	w.insp = asynq.NewInspectorFromRedisClient(w.uc)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := store.Open(ctx, store.Options{DataDir: w.dataDir, EncryptionKey: storetest.TestKey})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	// Migrated here, before any process starts: workers that start
	// together then find nothing to migrate.
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	w.st = st
	w.prod = client.New(w.uc, client.Options{Namespace: w.ns, Fallback: client.FallbackError, Logger: quiet})
	t.Cleanup(func() { _ = w.prod.Close(context.Background()) })

	w.env = proctest.Env{
		"REDIS_URL":                   redisURL,
		"TASKS_NAMESPACE":             w.ns,
		"DATA_DIR":                    w.dataDir,
		"LOG_FORMAT":                  "json",
		"LOG_LEVEL":                   "info",
		"SESSION_ENCRYPTION_KEY":      storetest.TestKey,
		"FALLBACK":                    "error",
		"WORKER_CONCURRENCY":          "16",
		"TASK_CHECK_INTERVAL":         "100ms",
		"DELAYED_TASK_CHECK_INTERVAL": "200ms",
		"HEALTH_CHECK_INTERVAL":       "1s",
		"SHUTDOWN_TIMEOUT":            "5s",
	}
	if o.Moderation {
		w.mod = moderationtest.NewServer(t, moderationKey)
		w.modProxy = newHoldProxy(t, w.mod.URL, func(r *http.Request, body []byte) string {
			switch r.URL.Path {
			case moderationtest.Scan:
				if o.ScanGate != nil {
					var req struct {
						AudioURL string `json:"audio_url"`
					}
					_ = json.Unmarshal(body, &req)
					return o.ScanGate(req.AudioURL)
				}
				return "scan"
			case moderationtest.Negated:
				return "negated"
			}
			return ""
		})
		w.env = w.env.With(
			"MODERATION_URL", w.modProxy.URL,
			"MODERATION_KEY", moderationKey,
			"AUDIO_URL_DEV_HTTP_HOSTS", "127.0.0.1",
			"AUDIO_URL_PREFLIGHT", "false",
		)
	}
	if o.S3 {
		w.s3 = newFakeS3(t)
		w.env = w.env.With(
			"STORAGE_URL", "s3://"+s3Bucket,
			"S3_ENDPOINT", w.s3.proxy.URL,
			"S3_REGION", "auto",
			"S3_ACCESS_KEY_ID", s3KeyID,
			"S3_SECRET_ACCESS_KEY", s3Secret,
			"S3_FORCE_PATH_STYLE", "true",
			"EXPORT_PART_SIZE", "5MiB",
		)
	}
	return w
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// queue is the namespaced asynq queue name of logical queue q.
func (w *world) queue(q string) string { return tasks.Namespaced(w.ns, q) }

// proc is a plyrtasks process with its HTTP address.
type proc struct {
	*proctest.Proc
	URL string
}

// start starts `plyrtasks <cmd>` with the world's environment plus kv,
// on a free HTTP port, and waits until /readyz answers 200.
func (w *world) start(t *testing.T, name, cmd string, kv ...string) *proc {
	t.Helper()
	addr := proctest.FreeAddr(t)
	env := w.env.With(append([]string{"HTTP_ADDR", addr}, kv...)...)
	p := &proc{Proc: bin.Start(t, name, env, cmd), URL: "http://" + addr}
	proctest.WaitHTTP(t, p.Proc, p.URL+"/readyz", http.StatusOK, 60*time.Second)
	return p
}

// audioURL is a track's audio URL as the moderation fake knows it (a
// development host: http and loopback are accepted, nothing fetches it).
func audioURL(name string) string { return "http://127.0.0.1:9/audio/" + name + ".mp3" }

// scannedTimes counts the moderation fake's accepted scans of url.
func (w *world) scannedTimes(url string) int {
	n := 0
	for _, u := range w.mod.Scanned() {
		if u == url {
			n++
		}
	}
	return n
}

// eventsFor counts the labeler events about subject.
func (w *world) eventsFor(subject string) int {
	n := 0
	for _, e := range w.mod.Events() {
		if e.SubjectURI == subject {
			n++
		}
	}
	return n
}

// scanTrack stores a track (by an artist) whose audio the moderation fake
// answers with answer, and returns it with its audio URL.
func (w *world) scanTrack(t testing.TB, name, answer string) (store.Track, string) {
	t.Helper()
	ctx := context.Background()
	did := "did:plc:faults" + name
	if err := w.st.UpsertArtist(ctx, store.Artist{DID: did, Handle: name + ".test"}); err != nil {
		t.Fatal(err)
	}
	tr, err := w.st.CreateTrack(ctx, store.Track{ArtistDID: did, Title: "Track " + name,
		RecordURI: "at://" + did + "/fm.plyr.track/" + name})
	if err != nil {
		t.Fatal(err)
	}
	u := audioURL(name)
	if answer != "" {
		w.mod.SetAnswer(u, moderationtest.Answer(answer))
	}
	return tr, u
}

// ref names one enqueued task.
type ref struct {
	Kind, Queue, ID string
}

func refOf(res client.Result) ref { return ref{Kind: res.Kind, Queue: res.Queue, ID: res.ID} }

// enqueue enqueues args with the producer client and fails the test unless
// the task was enqueued.
func (w *world) enqueue(t testing.TB, args tasks.Args, opts ...client.Option) ref {
	t.Helper()
	res, err := w.prod.Enqueue(context.Background(), args, opts...)
	if err != nil || res.Outcome != client.Enqueued {
		t.Fatalf("enqueue %s: %+v, %v", args.Kind(), res, err)
	}
	return refOf(res)
}

// info reads a task's state; nil when it is not in Redis.
func (w *world) info(r ref) *asynq.TaskInfo {
	ti, err := w.insp.GetTaskInfo(r.Queue, r.ID)
	if err != nil {
		return nil
	}
	return ti
}

// waitStates waits until every task is in one of states and returns their
// infos, failing the test after timeout with the ones that are not.
func (w *world) waitStates(t testing.TB, refs []ref, timeout time.Duration, states ...asynq.TaskState) map[string]*asynq.TaskInfo {
	t.Helper()
	deadline := time.Now().Add(timeout)
	out := map[string]*asynq.TaskInfo{}
	for {
		var missing []string
		for _, r := range refs {
			if _, ok := out[r.ID]; ok {
				continue
			}
			ti := w.info(r)
			if ti != nil && stateIn(ti.State, states) {
				out[r.ID] = ti
				continue
			}
			desc := "gone"
			if ti != nil {
				desc = fmt.Sprintf("%s (retried %d, last error %q)", ti.State, ti.Retried, ti.LastErr)
			}
			missing = append(missing, fmt.Sprintf("%s %s: %s", r.Kind, r.ID, desc))
		}
		if len(missing) == 0 {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s, %d tasks are not %v:\n  %s", timeout, len(missing), states, strings.Join(missing, "\n  "))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func stateIn(s asynq.TaskState, states []asynq.TaskState) bool {
	for _, x := range states {
		if s == x {
			return true
		}
	}
	return false
}

// activeIDs lists the IDs of active tasks in queues.
func (w *world) activeIDs(t testing.TB, queues ...string) map[string]bool {
	t.Helper()
	ids := map[string]bool{}
	for _, q := range queues {
		list, err := w.insp.ListActiveTasks(q, asynq.PageSize(1000))
		if err != nil && !strings.Contains(err.Error(), "not found") {
			t.Fatal(err)
		}
		for _, ti := range list {
			ids[ti.ID] = true
		}
	}
	return ids
}

// waitActive waits until every task of refs is active.
func (w *world) waitActive(t testing.TB, refs []ref, timeout time.Duration) {
	t.Helper()
	queues := map[string]bool{}
	for _, r := range refs {
		queues[r.Queue] = true
	}
	var qs []string
	for q := range queues {
		qs = append(qs, q)
	}
	deadline := time.Now().Add(timeout)
	for {
		active := w.activeIDs(t, qs...)
		var missing []string
		for _, r := range refs {
			if !active[r.ID] {
				missing = append(missing, r.Kind+" "+r.ID)
			}
		}
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not active after %s: %v", timeout, missing)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// fakeS3 is gofakes3 (memory backend) on loopback behind a hold proxy
// whose gate "part" is every UploadPart.
type fakeS3 struct {
	backend *s3mem.Backend
	url     string
	proxy   *holdProxy
	// direct is a storage client that talks to gofakes3 without the proxy.
	direct *storage.S3
}

func newFakeS3(t *testing.T) *fakeS3 {
	t.Helper()
	f := &fakeS3{backend: s3mem.New()}
	if err := f.backend.CreateBucket(s3Bucket); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gofakes3.New(f.backend).Server())
	t.Cleanup(srv.Close)
	f.url = srv.URL
	f.proxy = newHoldProxy(t, srv.URL, func(r *http.Request, _ []byte) string {
		if r.Method == http.MethodPut && r.URL.Query().Has("partNumber") {
			return "part"
		}
		return ""
	})
	s, err := storage.NewS3(context.Background(), storage.S3Options{
		Bucket: s3Bucket, Endpoint: srv.URL, Region: "auto",
		AccessKeyID: s3KeyID, SecretAccessKey: s3Secret, ForcePathStyle: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	f.direct = s
	return f
}

// objects lists the keys stored under prefix.
func (f *fakeS3) objects(t testing.TB, prefix string) []string {
	t.Helper()
	list, err := f.backend.ListBucket(s3Bucket, &gofakes3.Prefix{Prefix: prefix, HasPrefix: true}, gofakes3.ListBucketPage{})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range list.Contents {
		keys = append(keys, o.Key)
	}
	return keys
}

// readAll reads an object through the direct client.
func (f *fakeS3) readAll(t testing.TB, key string) []byte {
	t.Helper()
	r, err := f.direct.Open(context.Background(), key, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
