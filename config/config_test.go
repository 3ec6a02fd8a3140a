package config

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
)

type valid struct{ in, want string }
type invalid struct{ in, msg string }

type varCase struct {
	name    string
	def     string
	get     func(*Config) any
	extra   map[string]string // other variables the cases need
	valid   []valid
	invalid []invalid
}

var (
	key32    = base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	key32URL = base64.RawURLEncoding.EncodeToString([]byte("\xff\xfe0123456789abcdef0123456789abcd"))
	key16    = base64.StdEncoding.EncodeToString([]byte("0123456789abcdef"))
)

func durationCases(name string, def time.Duration, get func(*Config) any) varCase {
	r := TimingRanges()[name]
	rng := r.String()
	return varCase{
		name: name, def: def.String(), get: get,
		valid: []valid{{r.Min.String(), r.Min.String()}, {r.Max.String(), r.Max.String()}, {"", def.String()}},
		invalid: []invalid{
			{"0", fmt.Sprintf("%s=0s is out of range: allowed %s", name, rng)},
			{"0s", fmt.Sprintf("%s=0s is out of range: allowed %s", name, rng)},
			{"-1s", fmt.Sprintf("%s=-1s is out of range: allowed %s", name, rng)},
			{(r.Min - time.Millisecond).String(), fmt.Sprintf("%s=%s is out of range: allowed %s", name, r.Min-time.Millisecond, rng)},
			{(r.Max + time.Millisecond).String(), fmt.Sprintf("%s=%s is out of range: allowed %s", name, r.Max+time.Millisecond, rng)},
			{"1h", fmt.Sprintf("%s=1h is out of range: allowed %s", name, rng)},
			{"5", fmt.Sprintf(`%s="5": not a duration (write a number with a unit: 500ms, 2s, 1m)`, name)},
			{"soon", fmt.Sprintf(`%s="soon": not a duration (write a number with a unit: 500ms, 2s, 1m)`, name)},
		},
	}
}

func allCases() []varCase {
	exposed := map[string]string{"HTTP_ADDR": "0.0.0.0:8080", "API_TOKEN": "0123456789abcdef", "DASHBOARD_USER": "admin", "DASHBOARD_PASSWORD": "correct-horse"}
	return []varCase{
		{
			name: "REDIS_URL", def: "", get: func(c *Config) any { return c.RedisURL },
			valid: []valid{{"redis://127.0.0.1:6379/2", "redis://127.0.0.1:6379/2"}, {"redis-sentinel://s1,s2?master=m", "redis-sentinel://s1,s2?master=m"}, {"redis+cluster://n1:7000", "redis+cluster://n1:7000"}},
			invalid: []invalid{
				{"http://x", `REDIS_URL: unsupported scheme "http": want redis://, rediss://, redis-sentinel:// or redis-cluster://`},
				{"redis://u:SECRET@h1,h2", "REDIS_URL: 2 hosts in a redis:// URL: list several hosts only with redis-sentinel:// or redis-cluster://"},
				{"redis-sentinel://u:SECRET@s1", "REDIS_URL: redis-sentinel:// needs ?master=NAME (the name the Sentinels monitor)"},
			},
		},
		{
			name: "TASKS_NAMESPACE", def: "plyr", get: func(c *Config) any { return c.Namespace },
			valid: []valid{{"plyr-staging_2", "plyr-staging_2"}, {"a", "a"}, {strings.Repeat("x", 32), strings.Repeat("x", 32)}, {"", "plyr"}},
			invalid: []invalid{
				{"Plyr", `TASKS_NAMESPACE="Plyr" is not allowed: want 1 to 32 of a-z, 0-9, _ and -`},
				{"a:b", `TASKS_NAMESPACE="a:b" is not allowed: want 1 to 32 of a-z, 0-9, _ and -`},
				{strings.Repeat("x", 33), `TASKS_NAMESPACE="` + strings.Repeat("x", 33) + `" is not allowed: want 1 to 32 of a-z, 0-9, _ and -`},
			},
		},
		{
			name: "WORKER_CONCURRENCY", def: "10", get: func(c *Config) any { return c.WorkerConcurrency },
			valid: []valid{{"1", "1"}, {"1000", "1000"}, {"", "10"}},
			invalid: []invalid{
				{"0", "WORKER_CONCURRENCY=0 is out of range: allowed 1..1000"},
				{"1001", "WORKER_CONCURRENCY=1001 is out of range: allowed 1..1000"},
				{"-1", "WORKER_CONCURRENCY=-1 is out of range: allowed 1..1000"},
				{"ten", `WORKER_CONCURRENCY="ten": not an integer`},
				{"2.5", `WORKER_CONCURRENCY="2.5": not an integer`},
				{"99999999999999999999", `WORKER_CONCURRENCY="99999999999999999999": out of range for an integer`},
			},
		},
		{
			name: "DATABASE_URL", def: "", get: func(c *Config) any { return c.DatabaseURL },
			valid: []valid{{"postgres://u:p@127.0.0.1:5432/plyr", "postgres://u:p@127.0.0.1:5432/plyr"}, {"postgresql://127.0.0.1/plyr?sslmode=disable", "postgresql://127.0.0.1/plyr?sslmode=disable"}},
			invalid: []invalid{
				{"mysql://u:SECRET@h/db", `DATABASE_URL has scheme "mysql": want postgres://user:pass@host:5432/db (unset DATABASE_URL for the embedded SQLite)`},
				{"postgres:///plyr", "DATABASE_URL has no host: want postgres://user:pass@host:5432/db"},
				{"postgres://u:SECRET%zz@h/db", "DATABASE_URL is not a valid URL: want postgres://user:pass@host:5432/db"},
			},
		},
		{
			name: "DATA_DIR", def: "./data", get: func(c *Config) any { return c.DataDir },
			valid:   []valid{{"/var/lib/plyrtasks", "/var/lib/plyrtasks"}, {"", "./data"}},
			invalid: []invalid{{"   ", "DATA_DIR is blank: want a directory path"}},
		},
		{
			name: "HTTP_ADDR", def: "127.0.0.1:8080", get: func(c *Config) any { return c.HTTPAddr },
			valid: []valid{{"[::1]:9000", "[::1]:9000"}, {"localhost:0", "localhost:0"}, {"127.0.0.2:80", "127.0.0.2:80"}},
			invalid: []invalid{
				{"8080", `HTTP_ADDR="8080" is not host:port (e.g. 127.0.0.1:8080 or 0.0.0.0:8080)`},
				{"127.0.0.1:99999", `HTTP_ADDR="127.0.0.1:99999" has a bad port: want 0..65535`},
				{"127.0.0.1:http", `HTTP_ADDR="127.0.0.1:http" has a bad port: want 0..65535`},
			},
		},
		{
			name: "API_TOKEN", def: "", get: func(c *Config) any { return c.APIToken },
			valid: []valid{{"0123456789abcdef", "0123456789abcdef"}},
			invalid: []invalid{
				{"SECRET", "API_TOKEN is too short (6 characters): want at least 16 (openssl rand -hex 32)"},
			},
		},
		{
			name: "DASHBOARD_USER", def: "", get: func(c *Config) any { return c.Dashboard.User },
			extra: map[string]string{"DASHBOARD_PASSWORD": "correct-horse"},
			valid: []valid{{"admin", "admin"}},
			invalid: []invalid{
				{"", "DASHBOARD_PASSWORD is set but DASHBOARD_USER is not: set both or neither"},
			},
		},
		{
			name: "DASHBOARD_PASSWORD", def: "", get: func(c *Config) any { return c.Dashboard.Password },
			extra: map[string]string{"DASHBOARD_USER": "admin"},
			valid: []valid{{"correct-horse", "correct-horse"}},
			invalid: []invalid{
				{"", "DASHBOARD_USER is set but DASHBOARD_PASSWORD is not: set both or neither"},
				{"SECRET7", "DASHBOARD_PASSWORD is too short (7 characters): want at least 8"},
			},
		},
		{
			name: "DASHBOARD_VIEWER_USER", def: "", get: func(c *Config) any { return c.Dashboard.ViewerUser },
			extra: map[string]string{"DASHBOARD_VIEWER_PASSWORD": "battery-staple", "DASHBOARD_USER": "admin", "DASHBOARD_PASSWORD": "correct-horse"},
			valid: []valid{{"viewer", "viewer"}},
			invalid: []invalid{
				{"", "DASHBOARD_VIEWER_PASSWORD is set but DASHBOARD_VIEWER_USER is not: set both or neither"},
				{"admin", `DASHBOARD_VIEWER_USER="admin" is also DASHBOARD_USER: the admin and the read-only account need different names`},
			},
		},
		{
			name: "DASHBOARD_VIEWER_PASSWORD", def: "", get: func(c *Config) any { return c.Dashboard.ViewerPassword },
			extra: map[string]string{"DASHBOARD_VIEWER_USER": "viewer"},
			valid: []valid{{"battery-staple", "battery-staple"}},
			invalid: []invalid{
				{"", "DASHBOARD_VIEWER_USER is set but DASHBOARD_VIEWER_PASSWORD is not: set both or neither"},
				{"SECRET", "DASHBOARD_VIEWER_PASSWORD is too short (6 characters): want at least 8"},
			},
		},
		{
			name: "DASHBOARD_READ_ONLY", def: "false", get: func(c *Config) any { return c.Dashboard.ReadOnly },
			valid:   []valid{{"true", "true"}, {"1", "true"}, {"false", "false"}, {"", "false"}},
			invalid: []invalid{{"yes", `DASHBOARD_READ_ONLY="yes": not a boolean (true or false)`}},
		},
		{
			name: "LOG_FORMAT", def: "text", get: func(c *Config) any { return c.LogFormat },
			valid:   []valid{{"json", "json"}, {"JSON", "json"}, {"text", "text"}},
			invalid: []invalid{{"xml", `LOG_FORMAT="xml" is not allowed: want text or json`}},
		},
		{
			name: "LOG_LEVEL", def: "info", get: func(c *Config) any { return c.LogLevel },
			valid:   []valid{{"debug", "debug"}, {"WARN", "warn"}, {"error", "error"}, {"", "info"}},
			invalid: []invalid{{"verbose", `LOG_LEVEL="verbose" is not allowed: want debug, info, warn or error`}},
		},
		{
			name: "FALLBACK", def: "inline", get: func(c *Config) any { return c.Fallback },
			valid:   []valid{{"error", "error"}, {"Inline", "inline"}},
			invalid: []invalid{{"drop", `FALLBACK="drop" is not allowed: want inline or error`}},
		},
		{
			name: "INLINE_CONCURRENCY", def: "4", get: func(c *Config) any { return c.InlineConcurrency },
			valid: []valid{{"1", "1"}, {"256", "256"}},
			invalid: []invalid{
				{"0", "INLINE_CONCURRENCY=0 is out of range: allowed 1..256"},
				{"257", "INLINE_CONCURRENCY=257 is out of range: allowed 1..256"},
				{"four", `INLINE_CONCURRENCY="four": not an integer`},
			},
		},
		{
			name: "SESSION_ENCRYPTION_KEY", def: "", get: func(c *Config) any { return c.SessionEncryptionKey },
			valid: []valid{{key32, key32}, {key32URL, key32URL}},
			invalid: []invalid{
				{"SECRET-not-base64!", "SESSION_ENCRYPTION_KEY is not base64: want base64 of 32 random bytes (openssl rand -base64 32)"},
				{key16, "SESSION_ENCRYPTION_KEY decodes to 16 bytes: want base64 of exactly 32 random bytes (openssl rand -base64 32)"},
			},
		},
		durationCases("TASK_CHECK_INTERVAL", time.Second, func(c *Config) any { return c.Timing.TaskCheckInterval }),
		durationCases("DELAYED_TASK_CHECK_INTERVAL", 5*time.Second, func(c *Config) any { return c.Timing.DelayedTaskCheckInterval }),
		durationCases("SHUTDOWN_TIMEOUT", 20*time.Second, func(c *Config) any { return c.Timing.ShutdownTimeout }),
		durationCases("HEALTH_CHECK_INTERVAL", 15*time.Second, func(c *Config) any { return c.Timing.HealthCheckInterval }),
		durationCases("JANITOR_INTERVAL", 8*time.Second, func(c *Config) any { return c.Timing.JanitorInterval }),
		// Exposure rules: a non-loopback HTTP_ADDR with everything set.
		{
			name: "HTTP_ADDR", def: "127.0.0.1:8080", get: func(c *Config) any { return c.HTTPAddr }, extra: exposed,
			valid: []valid{{"0.0.0.0:8080", "0.0.0.0:8080"}, {":8080", ":8080"}, {"[::]:8080", "[::]:8080"}},
		},
	}
}

func fmtValue(v any) string {
	if d, ok := v.(time.Duration); ok {
		return d.String()
	}
	return fmt.Sprint(v)
}

func TestVariables(t *testing.T) {
	for _, vc := range allCases() {
		t.Run(vc.name, func(t *testing.T) {
			c, err := LoadEnv(map[string]string{})
			if err != nil {
				t.Fatalf("defaults: %v", err)
			}
			if got := fmtValue(vc.get(c)); got != vc.def {
				t.Errorf("default = %q, want %q", got, vc.def)
			}
			for _, v := range vc.valid {
				environ := map[string]string{vc.name: v.in}
				for k, x := range vc.extra {
					if k != vc.name {
						environ[k] = x
					}
				}
				c, err := LoadEnv(environ)
				if err != nil {
					t.Errorf("%s=%q: %v", vc.name, v.in, err)
					continue
				}
				if got := fmtValue(vc.get(c)); got != v.want {
					t.Errorf("%s=%q gives %q, want %q", vc.name, v.in, got, v.want)
				}
			}
			for _, v := range vc.invalid {
				environ := map[string]string{vc.name: v.in}
				for k, x := range vc.extra {
					if k != vc.name {
						environ[k] = x
					}
				}
				c, err := LoadEnv(environ)
				if err == nil {
					t.Errorf("%s=%q accepted (%v), want error %q", vc.name, v.in, vc.get(c), v.msg)
					continue
				}
				if err.Error() != v.msg {
					t.Errorf("%s=%q:\n got error %q\nwant error %q", vc.name, v.in, err.Error(), v.msg)
				}
				if strings.Contains(err.Error(), "SECRET") {
					t.Errorf("%s=%q: error %q shows a secret", vc.name, v.in, err)
				}
			}
		})
	}
}

// Every variable of the core config has a table entry above.
func TestEveryCoreVariableIsTested(t *testing.T) {
	tested := map[string]bool{}
	for _, vc := range allCases() {
		tested[vc.name] = true
	}
	for _, v := range describe(typeOfConfig()) {
		if isCore(v) && !tested[v.Key] {
			t.Errorf("%s has no test case", v.Key)
		}
	}
}

func TestNonLoopbackNeedsTokenAndDashboardAccount(t *testing.T) {
	cases := []struct {
		env  map[string]string
		want []string // messages, in order; none = valid
	}{
		{map[string]string{"HTTP_ADDR": "0.0.0.0:8080"}, []string{
			"API_TOKEN is required: HTTP_ADDR=0.0.0.0:8080 is not a loopback address, and the API must not be open to the network",
			"DASHBOARD_USER and DASHBOARD_PASSWORD (or DASHBOARD_VIEWER_USER and DASHBOARD_VIEWER_PASSWORD) are required: HTTP_ADDR=0.0.0.0:8080 is not a loopback address, and the dashboard must not be open to the network",
		}},
		{map[string]string{"HTTP_ADDR": ":8080", "DASHBOARD_USER": "admin", "DASHBOARD_PASSWORD": "correct-horse"}, []string{
			"API_TOKEN is required: HTTP_ADDR=:8080 is not a loopback address, and the API must not be open to the network",
		}},
		{map[string]string{"HTTP_ADDR": "192.0.2.10:8080", "API_TOKEN": "0123456789abcdef"}, []string{
			"DASHBOARD_USER and DASHBOARD_PASSWORD (or DASHBOARD_VIEWER_USER and DASHBOARD_VIEWER_PASSWORD) are required: HTTP_ADDR=192.0.2.10:8080 is not a loopback address, and the dashboard must not be open to the network",
		}},
		{map[string]string{"HTTP_ADDR": "0.0.0.0:8080", "API_TOKEN": "0123456789abcdef", "DASHBOARD_VIEWER_USER": "v", "DASHBOARD_VIEWER_PASSWORD": "battery-staple"}, nil},
		{map[string]string{"HTTP_ADDR": "127.0.0.1:8080"}, nil},
		{map[string]string{"HTTP_ADDR": "[::1]:8080"}, nil},
		{map[string]string{"HTTP_ADDR": "localhost:8080"}, nil},
	}
	for _, c := range cases {
		cfg, err := LoadEnv(c.env)
		if len(c.want) == 0 {
			if err != nil {
				t.Errorf("%v: %v", c.env, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%v accepted", c.env)
			continue
		}
		if got := err.Error(); got != strings.Join(c.want, "\n") {
			t.Errorf("%v:\n got %q\nwant %q", c.env, got, strings.Join(c.want, "\n"))
		}
		_ = cfg
	}
	c, _ := LoadEnv(map[string]string{"HTTP_ADDR": "127.0.0.1:8080"})
	if lb, err := c.HTTPLoopback(); !lb || err != nil {
		t.Errorf("HTTPLoopback(127.0.0.1:8080) = %v, %v", lb, err)
	}
}

// All problems are reported at once, each naming its variable.
func TestAllErrorsAtOnce(t *testing.T) {
	_, err := LoadEnv(map[string]string{
		"WORKER_CONCURRENCY":  "ten",
		"TASK_CHECK_INTERVAL": "0s",
		"JANITOR_INTERVAL":    "5",
		"LOG_LEVEL":           "loud",
		"REDIS_URL":           "redis://u:SECRET@h1,h2",
	})
	if err == nil {
		t.Fatal("accepted")
	}
	lines := strings.Split(err.Error(), "\n")
	want := []string{
		`WORKER_CONCURRENCY="ten": not an integer`,
		`JANITOR_INTERVAL="5": not a duration (write a number with a unit: 500ms, 2s, 1m)`,
		`REDIS_URL: 2 hosts in a redis:// URL: list several hosts only with redis-sentinel:// or redis-cluster://`,
		`LOG_LEVEL="loud" is not allowed: want debug, info, warn or error`,
		`TASK_CHECK_INTERVAL=0s is out of range: allowed 10ms..5s`,
	}
	if len(lines) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%s", len(lines), len(want), err)
	}
	for _, w := range want {
		found := false
		for _, l := range lines {
			found = found || l == w
		}
		if !found {
			t.Errorf("missing %q in:\n%s", w, err)
		}
	}
	if strings.Contains(err.Error(), "SECRET") {
		t.Errorf("error shows a secret: %s", err)
	}
}

func TestLoadReadsProcessEnvironment(t *testing.T) {
	t.Setenv("WORKER_CONCURRENCY", "42")
	t.Setenv("TASKS_NAMESPACE", "staging")
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if c.WorkerConcurrency != 42 || c.Namespace != "staging" {
		t.Fatalf("Load() = concurrency %d namespace %q", c.WorkerConcurrency, c.Namespace)
	}
	t.Setenv("WORKER_CONCURRENCY", "0")
	if _, err := Load(); err == nil || err.Error() != "WORKER_CONCURRENCY=0 is out of range: allowed 1..1000" {
		t.Fatalf("Load() with WORKER_CONCURRENCY=0: %v", err)
	}
}

func TestValidateOnABuiltConfig(t *testing.T) {
	c, err := LoadEnv(map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	c.Timing.ShutdownTimeout = 0
	c.LogFormat = "JSON" // LoadEnv lower-cases; a hand-built config must be exact
	want := "LOG_FORMAT=\"JSON\" is not allowed: want text or json\nSHUTDOWN_TIMEOUT=0s is out of range: allowed 1s..20s"
	if err := c.Validate(); err == nil || err.Error() != want {
		t.Fatalf("Validate() = %v, want %q", err, want)
	}
}

func TestRedacted(t *testing.T) {
	c, err := LoadEnv(map[string]string{
		"REDIS_URL":                 "redis-sentinel://app:SECRETPRIMARY@s1,s2/3?master=m&sentinel_password=SECRETSENT",
		"DATABASE_URL":              "postgres://plyr:SECRETDB@127.0.0.1:5432/plyr",
		"API_TOKEN":                 "SECRET0123456789abcdef",
		"DASHBOARD_USER":            "admin",
		"DASHBOARD_PASSWORD":        "SECRETADMIN",
		"SESSION_ENCRYPTION_KEY":    key32,
		"DASHBOARD_VIEWER_USER":     "",
		"DASHBOARD_VIEWER_PASSWORD": "",
		"TASK_CHECK_INTERVAL":       "250ms",
	})
	if err != nil {
		t.Fatal(err)
	}
	r := c.Redacted()
	want := map[string]string{
		"REDIS_URL":                 "redis-sentinel://app:xxxxx@s1:26379,s2:26379/3?master=m&sentinel_password=xxxxx",
		"DATABASE_URL":              "postgres://plyr:xxxxx@127.0.0.1:5432/plyr",
		"API_TOKEN":                 "set",
		"DASHBOARD_USER":            "admin",
		"DASHBOARD_PASSWORD":        "set",
		"DASHBOARD_VIEWER_USER":     "unset",
		"DASHBOARD_VIEWER_PASSWORD": "unset",
		"SESSION_ENCRYPTION_KEY":    "set",
		"TASK_CHECK_INTERVAL":       "250ms",
		"WORKER_CONCURRENCY":        "10",
		"DASHBOARD_READ_ONLY":       "false",
		"TASKS_NAMESPACE":           "plyr",
	}
	for k, w := range want {
		if r[k] != w {
			t.Errorf("Redacted()[%s] = %q, want %q", k, r[k], w)
		}
	}
	for k, v := range r {
		if strings.Contains(v, "SECRET") || strings.Contains(v, key32) {
			t.Errorf("Redacted()[%s] = %q shows a secret", k, v)
		}
	}
	// Every variable appears, the families' included.
	for _, v := range describe(typeOfConfig()) {
		if _, ok := r[v.Key]; !ok {
			t.Errorf("Redacted() lacks %s", v.Key)
		}
	}
}

func TestTimingRanges(t *testing.T) {
	ranges := TimingRanges()
	var timingVars []string
	for _, v := range describe(typeOfConfig()) {
		if v.Owner.Name() == "Timing" {
			timingVars = append(timingVars, v.Key)
		}
	}
	if len(ranges) != len(timingVars) {
		t.Fatalf("TimingRanges has %d entries, Timing has %d variables %v", len(ranges), len(timingVars), timingVars)
	}
	defaults, _ := LoadEnv(map[string]string{})
	cur := defaults.Timing.byName()
	for _, name := range timingVars {
		r, ok := ranges[name]
		if !ok {
			t.Errorf("%s has no range", name)
			continue
		}
		if r.Min <= 0 || r.Min >= r.Max {
			t.Errorf("%s range %s: want 0 < min < max", name, r)
		}
		if d := *cur[name]; d < r.Min || d > r.Max {
			t.Errorf("%s default %s outside %s", name, d, r)
		}
	}
	// Every setting at its minimum, then at its maximum, is a valid config.
	for _, end := range []string{"min", "max"} {
		environ := map[string]string{}
		for name, r := range ranges {
			environ[name] = map[string]time.Duration{"min": r.Min, "max": r.Max}[end].String()
		}
		c, err := LoadEnv(environ)
		if err != nil {
			t.Fatalf("all timings at %s: %v", end, err)
		}
		for name, d := range c.Timing.byName() {
			if want := environ[name]; d.String() != want {
				t.Errorf("%s at %s = %s, want %s", name, end, d, want)
			}
		}
		if end == "max" {
			// A 30s kill grace covers the longest drain the ranges allow.
			if drain := c.Timing.MaxDrain(); drain != 28*time.Second || drain >= 30*time.Second {
				t.Errorf("MaxDrain at the maxima = %s, want 28s (< 30s)", drain)
			}
		}
	}
}

func TestTimingApply(t *testing.T) {
	c, err := LoadEnv(map[string]string{
		"TASK_CHECK_INTERVAL": "10ms", "DELAYED_TASK_CHECK_INTERVAL": "100ms",
		"SHUTDOWN_TIMEOUT": "3s", "HEALTH_CHECK_INTERVAL": "2s", "JANITOR_INTERVAL": "30s",
	})
	if err != nil {
		t.Fatal(err)
	}
	var ac asynq.Config
	c.Timing.Apply(&ac)
	if ac.TaskCheckInterval != 10*time.Millisecond || ac.DelayedTaskCheckInterval != 100*time.Millisecond ||
		ac.ShutdownTimeout != 3*time.Second || ac.HealthCheckInterval != 2*time.Second || ac.JanitorInterval != 30*time.Second {
		t.Fatalf("Apply gave %+v", ac)
	}
	if d := c.Timing.MaxDrain(); d != 3*time.Second+515*time.Millisecond {
		t.Fatalf("MaxDrain = %s, want 3.515s", d)
	}
}

func TestRedisAndDatabaseHelpers(t *testing.T) {
	c, _ := LoadEnv(map[string]string{})
	if !c.EmbeddedRedis() || !c.EmbeddedDatabase() {
		t.Fatal("defaults should be embedded Redis and embedded SQLite")
	}
	c, err := LoadEnv(map[string]string{"REDIS_URL": "redis://:pw@127.0.0.1:6390/4", "DATABASE_URL": "postgres://127.0.0.1/plyr"})
	if err != nil {
		t.Fatal(err)
	}
	if c.EmbeddedRedis() || c.EmbeddedDatabase() {
		t.Fatal("configured Redis/PostgreSQL reported as embedded")
	}
	s, err := c.RedisSpec()
	if err != nil || s.Addrs[0] != "127.0.0.1:6390" || s.DB != 4 || s.Password != "pw" {
		t.Fatalf("RedisSpec = %+v, %v", s, err)
	}
}

// The task families' variables are parsed and validated with the rest, and
// their parse errors name the variable too.
func TestFamiliesAreParsedAndValidated(t *testing.T) {
	cases := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"PDS_TIMEOUT": "10h"}, "PDS_TIMEOUT"},              // ATProto.Validate()
		{map[string]string{"EXPORT_URL_EXPIRY": "1s"}, "EXPORT_URL_EXPIRY"},   // Storage.Validate(dataDir)
		{map[string]string{"MODERATION_TIMEOUT": "1h"}, "MODERATION_TIMEOUT"}, // Moderation.Validate()
		{map[string]string{"MODERATION_TIMEOUT": "x"}, `MODERATION_TIMEOUT="x": not a duration`},
		{map[string]string{"COPYRIGHT_SCORE_THRESHOLD": "high"}, `COPYRIGHT_SCORE_THRESHOLD="high": not a number`},
		{map[string]string{"AUDIO_URL_PREFLIGHT": "maybe"}, `AUDIO_URL_PREFLIGHT="maybe": not a boolean (true or false)`},
	}
	for _, c := range cases {
		_, err := LoadEnv(c.env)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want it to contain %q", c.env, err, c.want)
		}
	}
	c, err := LoadEnv(map[string]string{"PDS_TIMEOUT": "45s", "TEAL_DEDUPE_WINDOW": "2m"})
	if err != nil {
		t.Fatal(err)
	}
	if c.ATProto.PDSTimeout != 45*time.Second || c.ATProto.TealDedupeWindow != 2*time.Minute {
		t.Fatalf("family variables not parsed: %+v", c.ATProto)
	}
}

// The newcomer run: EXPORT_PART_SIZE=abc reported "not an integer" and then
// "0B is outside the allowed range", a range error about the zero value
// the failed parse left behind.
func TestAFailedParseIsReportedOnce(t *testing.T) {
	_, err := LoadEnv(map[string]string{"EXPORT_PART_SIZE": "abc"})
	if err == nil {
		t.Fatal("accepted")
	}
	if got := strings.Split(err.Error(), "\n"); len(got) != 1 || !strings.Contains(got[0], `EXPORT_PART_SIZE="abc"`) {
		t.Errorf("errors = %q, want only the parse error", got)
	}
}
