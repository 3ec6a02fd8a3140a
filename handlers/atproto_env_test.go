package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/plyr-fm/plyrtasks/config"
	"github.com/plyr-fm/plyrtasks/internal/redistest"
	"github.com/plyr-fm/plyrtasks/job"
	"github.com/plyr-fm/plyrtasks/pds"
	"github.com/plyr-fm/plyrtasks/pds/pdstest"
	"github.com/plyr-fm/plyrtasks/store"
	"github.com/plyr-fm/plyrtasks/store/storetest"
	"github.com/plyr-fm/plyrtasks/tasks"
)

// atEnv is an ATProto test world: the real PDS behind a counting,
// fault-injecting proxy; a SQLite store; a real Redis; and the handlers
// registered in a job.Registry exactly as the worker registers them.
type atEnv struct {
	pdsURL string
	proxy  *pdstest.Proxy
	st     store.Store
	redis  *redis.Client
	rsrv   *redistest.Server
	pds    *pds.Client
	reg    *job.Registry
	cfg    *config.Config
	taskN  atomic.Int64
	// metrics, when set, is what workers started by worker count into.
	metrics *job.Metrics
}

func newATEnv(t *testing.T) *atEnv {
	t.Helper()
	u := pdstest.URL(t)
	// Each test has its own accounts, store, Redis and proxy: they can
	// share the PDS. Most of their time is waiting on it.
	t.Parallel()
	e := &atEnv{pdsURL: u, proxy: pdstest.NewProxy(t, u), st: storetest.SQLite(t)}
	e.rsrv = redistest.Start(t, redistest.Options{})
	e.redis = e.rsrv.Client(t, e.rsrv.DB(t))
	e.cfg = &config.Config{Namespace: "attest"}
	var err error
	if e.pds, err = pds.New(pds.Options{Store: e.st, Redis: e.redis, Namespace: e.cfg.Namespace}); err != nil {
		t.Fatal(err)
	}
	e.reg = job.NewRegistry(tasks.All())
	if err := Register(e.reg, e.deps()); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *atEnv) deps() Deps {
	return Deps{Config: e.cfg, Store: e.st, Redis: e.redis, PDS: e.pds, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

// atUser is an account on the PDS with a stored password session whose
// requests go through the proxy.
type atUser struct {
	pdstest.Account
	SessionID string
}

func (e *atEnv) newUser(t *testing.T) atUser {
	t.Helper()
	a := pdstest.NewAccount(t, e.pdsURL)
	s, err := e.pds.Login(context.Background(), e.proxy.URL, a.Handle, a.Password)
	if err != nil {
		t.Fatal(err)
	}
	return atUser{Account: a, SessionID: s.ID}
}

// artist makes u an artist in the store.
func (e *atEnv) artist(t *testing.T, u atUser) {
	t.Helper()
	if err := e.st.UpsertArtist(context.Background(), store.Artist{DID: u.DID, Handle: u.Handle, PDSURL: e.proxy.URL}); err != nil {
		t.Fatal(err)
	}
}

// track publishes a track: a real fm.plyr.track record in u's repo and a
// track row carrying its URI/CID.
func (e *atEnv) track(t *testing.T, u atUser, title string) store.Track {
	t.Helper()
	created := time.Now().UTC()
	rkey := pds.TID(created, e.taskN.Add(1))
	rec := pdstest.PutRecord(t, e.pdsURL, u.Account, "fm.plyr.track", rkey, map[string]any{
		"$type": "fm.plyr.track", "title": title, "artist": u.Handle, "createdAt": pds.Datetime(created)})
	tr, err := e.st.CreateTrack(context.Background(), store.Track{ArtistDID: u.DID, Title: title, RecordURI: rec.URI, RecordCID: rec.CID, CreatedAt: created})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// atResult is one run of a task.
type atResult struct {
	Err error
	Out map[string]any
}

// run runs args through the registry's pipeline as attempt n of the task
// with ID taskID ("" for a fresh ID).
func (e *atEnv) run(t *testing.T, args tasks.Args, taskID string, attempt int) atResult {
	t.Helper()
	payload, err := tasks.Encode(args)
	if err != nil {
		t.Fatal(err)
	}
	def, _ := e.reg.Catalog().Lookup(args.Kind())
	if taskID == "" {
		taskID = fmt.Sprintf("task-%d", e.taskN.Add(1))
	}
	var out bytes.Buffer
	task := &job.Task{Kind: args.Kind(), Payload: payload, ID: taskID, Queue: def.Opts.Queue, Attempt: attempt, MaxRetry: def.Opts.Retries(), Result: &out}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r := atResult{Err: e.reg.Handler()(ctx, task)}
	if out.Len() > 0 {
		if err := json.Unmarshal(out.Bytes(), &r.Out); err != nil {
			t.Fatalf("result %q: %v", out.String(), err)
		}
	}
	return r
}

// mustRun runs args and fails the test on an error.
func (e *atEnv) mustRun(t *testing.T, args tasks.Args) map[string]any {
	t.Helper()
	r := e.run(t, args, "", 0)
	if r.Err != nil {
		t.Fatalf("%s: %v", args.Kind(), r.Err)
	}
	return r.Out
}

func (e *atEnv) records(t *testing.T, u atUser, collection string) []pdstest.Record {
	t.Helper()
	return pdstest.ListRecords(t, e.pdsURL, u.DID, collection)
}

// record reads collection/rkey of u and fails when it is missing.
func (e *atEnv) record(t *testing.T, u atUser, collection, rkey string) pdstest.Record {
	t.Helper()
	r, ok := pdstest.GetRecord(t, e.pdsURL, u.DID, collection, rkey)
	if !ok {
		t.Fatalf("no record %s/%s in %s", collection, rkey, u.DID)
	}
	return r
}

// atJSON renders v compactly with sorted keys, for exact comparisons.
func atJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	b, _ = json.Marshal(m)
	return string(b)
}

func atRKey(t *testing.T, uri string) string {
	t.Helper()
	_, _, rkey, err := pds.ParseRecordURI(uri)
	if err != nil {
		t.Fatal(err)
	}
	return rkey
}
