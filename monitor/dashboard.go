package monitor

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/hibiken/asynq"
	"github.com/hibiken/asynqmon"
	"github.com/redis/go-redis/v9"

	"github.com/plyr-fm/plyrtasks/internal/httpauth"
	"github.com/plyr-fm/plyrtasks/tasks"
)

// DefaultRootPath is where the dashboard is mounted when
// DashboardOptions.RootPath is empty.
const DefaultRootPath = "/monitoring"

// Credentials are one HTTP basic-auth user name and password.
type Credentials struct {
	User     string
	Password string
}

// Set reports whether both the user name and the password are present.
func (c Credentials) Set() bool { return c.User != "" && c.Password != "" }

// DashboardOptions configure NewDashboard.
type DashboardOptions struct {
	// Redis is the client the tasks live in. Required. The dashboard shares
	// it and never closes it.
	Redis redis.UniversalClient
	// RootPath is the URL prefix. Default DefaultRootPath ("/monitoring").
	RootPath string
	// Admin may do everything the dashboard offers (DASHBOARD_USER and
	// DASHBOARD_PASSWORD).
	Admin Credentials
	// Viewer gets a read-only dashboard (DASHBOARD_VIEWER_USER and
	// DASHBOARD_VIEWER_PASSWORD). Optional.
	Viewer Credentials
	// ReadOnly makes the dashboard read-only for every account, admins
	// included (DASHBOARD_READ_ONLY). Default false.
	ReadOnly bool
	// Logger receives the warning about an unauthenticated dashboard.
	// Default: discard.
	Logger *slog.Logger
}

// Dashboard serves asynqmon behind HTTP basic auth. Admins get the full
// dashboard, viewers a read-only one. With no credentials configured at all
// it answers only callers on the loopback interface that did not come
// through a proxy, so it is never open to the world.
type Dashboard struct {
	rootPath string
	admin    http.Handler
	viewer   http.Handler
	adminC   Credentials
	viewerC  Credentials
	// loopbackOnly: no credentials configured.
	loopbackOnly bool
}

// NewDashboard builds the dashboard. Credentials given by halves (a user
// without a password, or the reverse) are an error naming the variable.
func NewDashboard(o DashboardOptions) (*Dashboard, error) {
	if o.Redis == nil {
		return nil, errors.New("monitor: dashboard needs a Redis client")
	}
	if err := checkPair("DASHBOARD_USER", "DASHBOARD_PASSWORD", o.Admin); err != nil {
		return nil, err
	}
	if err := checkPair("DASHBOARD_VIEWER_USER", "DASHBOARD_VIEWER_PASSWORD", o.Viewer); err != nil {
		return nil, err
	}
	if o.Admin.Set() && o.Viewer.Set() && o.Admin.User == o.Viewer.User {
		return nil, errors.New("monitor: DASHBOARD_VIEWER_USER must differ from DASHBOARD_USER")
	}
	root := strings.TrimSuffix(o.RootPath, "/")
	if root == "" {
		root = DefaultRootPath
	}
	if !strings.HasPrefix(root, "/") {
		return nil, errors.New("monitor: dashboard root path must start with '/'")
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	conn := sharedConn{o.Redis}
	newUI := func(readOnly bool) http.Handler {
		// asynqmon.New makes its clients through conn, which hands back our
		// shared client; its Close would close that client, so it is never
		// called (the Dashboard has no Close).
		return asynqmon.New(asynqmon.Options{
			RootPath:         root,
			RedisConnOpt:     conn,
			PayloadFormatter: asynqmon.PayloadFormatterFunc(FormatPayload),
			ResultFormatter:  asynqmon.ResultFormatterFunc(FormatResult),
			ReadOnly:         readOnly,
		})
	}
	d := &Dashboard{
		rootPath: root,
		adminC:   o.Admin,
		viewerC:  o.Viewer,
		viewer:   readOnlyMethods(newUI(true)),
	}
	d.admin = d.viewer
	if !o.ReadOnly {
		d.admin = newUI(false)
	}
	if !o.Admin.Set() && !o.Viewer.Set() {
		d.loopbackOnly = true
		log.Warn("\n" +
			"!!! DASHBOARD WITHOUT CREDENTIALS !!!\n" +
			"    DASHBOARD_USER/DASHBOARD_PASSWORD are not set, so the dashboard at " + root + "/\n" +
			"    answers only direct requests from this machine (loopback) and refuses everyone else.\n" +
			"    Set DASHBOARD_USER and DASHBOARD_PASSWORD (and DASHBOARD_VIEWER_USER/_PASSWORD for\n" +
			"    read-only access) before exposing it.")
	}
	return d, nil
}

func checkPair(userVar, passVar string, c Credentials) error {
	switch {
	case c.User != "" && c.Password == "":
		return errors.New("monitor: " + userVar + " is set but " + passVar + " is empty: set both or neither")
	case c.User == "" && c.Password != "":
		return errors.New("monitor: " + passVar + " is set but " + userVar + " is empty: set both or neither")
	}
	return nil
}

// RootPath is the URL prefix the dashboard answers under, without the
// trailing slash.
func (d *Dashboard) RootPath() string { return d.rootPath }

// LoopbackOnly reports whether the dashboard runs without credentials and
// so answers loopback callers only.
func (d *Dashboard) LoopbackOnly() bool { return d.loopbackOnly }

// ServeHTTP authenticates the caller and hands the request to the admin or
// the read-only dashboard.
func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if d.loopbackOnly {
		if !httpauth.DirectLoopback(r) {
			http.Error(w, "dashboard: no credentials are configured (DASHBOARD_USER/DASHBOARD_PASSWORD), so it answers only direct requests from this machine", http.StatusForbidden)
			return
		}
		d.admin.ServeHTTP(w, r)
		return
	}
	user, pass, ok := r.BasicAuth()
	switch {
	case ok && d.adminC.Set() && credentialsMatch(d.adminC, user, pass):
		d.admin.ServeHTTP(w, r)
	case ok && d.viewerC.Set() && credentialsMatch(d.viewerC, user, pass):
		d.viewer.ServeHTTP(w, r)
	default:
		w.Header().Set("WWW-Authenticate", `Basic realm="plyrtasks dashboard", charset="UTF-8"`)
		http.Error(w, "dashboard: authentication required", http.StatusUnauthorized)
	}
}

// credentialsMatch compares in constant time (httpauth.Equal).
func credentialsMatch(want Credentials, user, pass string) bool {
	u := httpauth.Equal(want.User, user)
	p := httpauth.Equal(want.Password, pass)
	return u && p
}

// readOnlyMethods refuses anything but GET and HEAD. asynqmon's own
// read-only mode covers its API routes; this covers every path.
func readOnlyMethods(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, "dashboard: read-only access", http.StatusMethodNotAllowed)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// sharedConn is an asynq.RedisConnOpt that hands out an existing client, so
// the dashboard reads the same Redis (embedded or configured) the process
// already talks to. Whoever calls MakeRedisClient must not close the result.
type sharedConn struct{ c redis.UniversalClient }

var _ asynq.RedisConnOpt = sharedConn{}

// MakeRedisClient returns the shared client.
func (s sharedConn) MakeRedisClient() any { return s.c }

// FormatPayload renders a task payload for the dashboard: indented JSON with
// secrets and comment text removed (tasks.Redact).
func FormatPayload(_ string, payload []byte) string { return formatJSON(tasks.Redact(payload)) }

// FormatResult renders a task result the same way as FormatPayload.
func FormatResult(_ string, result []byte) string { return formatJSON(tasks.Redact(result)) }

func formatJSON(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, b, "", "  "); err != nil {
		return string(b)
	}
	return buf.String()
}
