// Package redisconn turns a REDIS_URL into a go-redis client for one Redis
// server, a Sentinel-managed primary or a Redis Cluster, with production
// timeouts and retries, and runs the embedded in-memory Redis (miniredis)
// that plyrtasks uses when REDIS_URL is unset.
//
// asynq.ParseRedisURI is not used: for redis-sentinel:// URLs it drops the
// username, the primary's password and the database number (it takes the
// userinfo password as the Sentinel password), and it has no cluster form.
//
// URL forms (passwords percent-encoded where they contain / ? # @ or %):
//
//	redis://[user:pass@]host[:6379][/db][?options]
//	rediss://[user:pass@]host[:6379][/db][?options]              TLS
//	redis-sentinel://[user:pass@]s1[:26379],s2,…[/db]?master=NAME[&sentinel_username=U][&sentinel_password=P][&options]
//	redis-cluster://[user:pass@]n1[:6379],n2,…[?options]         (also redis+cluster://)
//
// In the Sentinel form the userinfo belongs to the primary (and its
// replicas); the Sentinels' own credentials go in the query. Options:
// dial_timeout, read_timeout, write_timeout (Go durations, e.g. 500ms) and
// pool_size (connections per node).
package redisconn

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Mode is the kind of Redis deployment a Spec points at.
type Mode int

// Modes.
const (
	// Single is one Redis server (redis:// or rediss://).
	Single Mode = iota
	// Sentinel is a primary found through Redis Sentinel (redis-sentinel://).
	Sentinel
	// Cluster is a Redis Cluster (redis-cluster:// or redis+cluster://).
	// asynq keeps every key of a queue in one hash slot ({queue} hash
	// tags), so its scripts run on a cluster.
	Cluster
)

func (m Mode) String() string {
	switch m {
	case Single:
		return "single"
	case Sentinel:
		return "sentinel"
	case Cluster:
		return "cluster"
	}
	return "mode(" + strconv.Itoa(int(m)) + ")"
}

// Default connection settings, used where the URL does not override them.
// They bound every Redis call: a hung or partitioned Redis turns into an
// error within seconds (which asynq logs and retries, and which the
// producer's fallback can act on) instead of a goroutine blocked forever.
const (
	// DefaultDialTimeout bounds establishing a connection.
	DefaultDialTimeout = 5 * time.Second
	// DefaultReadTimeout bounds waiting for a reply. asynq issues no
	// blocking commands (it polls), so no reply legitimately takes longer;
	// its longest scripts (janitor, forwarder) work in batches of 100.
	DefaultReadTimeout = 3 * time.Second
	// DefaultWriteTimeout bounds writing a command.
	DefaultWriteTimeout = 3 * time.Second
	// DefaultMaxRetries is how often go-redis retries a command that failed
	// on a network error (not a Redis error reply) before returning it.
	DefaultMaxRetries = 3
	// DefaultMinRetryBackoff and DefaultMaxRetryBackoff bound the
	// exponential, jittered back-off between those retries: the three
	// retries span roughly a second, enough to ride over a Sentinel
	// failover's reconnect or a brief network blip without stalling a
	// caller for long.
	DefaultMinRetryBackoff = 8 * time.Millisecond
	DefaultMaxRetryBackoff = 512 * time.Millisecond
	// DefaultPort and DefaultSentinelPort apply to hosts given without a port.
	DefaultPort         = 6379
	DefaultSentinelPort = 26379
)

// Spec is a parsed REDIS_URL. The zero value is not useful; build one with
// Parse. String() never shows a password.
type Spec struct {
	Mode Mode
	// TLS is set by the rediss:// scheme.
	TLS bool
	// Addrs are host:port pairs: the server (Single), the Sentinels
	// (Sentinel) or the seed nodes (Cluster).
	Addrs []string
	// Username and Password authenticate to the data node(s): the server,
	// the Sentinel-managed primary and replicas, or the cluster nodes.
	Username string
	Password string
	// DB is the database number (always 0 for Cluster).
	DB int
	// MasterName is the name the Sentinels monitor (Sentinel only).
	MasterName string
	// SentinelUsername and SentinelPassword authenticate to the Sentinels.
	SentinelUsername string
	SentinelPassword string
	// DialTimeout, ReadTimeout, WriteTimeout and PoolSize come from the
	// query; zero means the package default (pool: go-redis' 10 per CPU).
	DialTimeout  time.Duration
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
	PoolSize     int
}

// ErrEmpty is returned by Parse for an empty URL. plyrtasks treats an unset
// REDIS_URL as "use the embedded Redis" before it gets here.
var ErrEmpty = errors.New("REDIS_URL is empty")

// parseError names REDIS_URL and the bad part; it never carries a secret.
func parseError(format string, args ...any) error {
	return fmt.Errorf("REDIS_URL: "+format, args...)
}

var schemes = map[string]struct {
	mode Mode
	tls  bool
}{
	"redis":          {Single, false},
	"rediss":         {Single, true},
	"redis-sentinel": {Sentinel, false},
	"redis-cluster":  {Cluster, false},
	"redis+cluster":  {Cluster, false},
}

// Parse parses a REDIS_URL (see the package doc for the forms). Errors name
// REDIS_URL and the offending part, never a password.
func Parse(rawURL string) (Spec, error) {
	rawURL = strings.TrimSpace(rawURL)
	if rawURL == "" {
		return Spec{}, ErrEmpty
	}
	schemeEnd := strings.Index(rawURL, "://")
	if schemeEnd < 0 {
		return Spec{}, parseError("missing scheme: want redis://, rediss://, redis-sentinel:// or redis-cluster://")
	}
	scheme := strings.ToLower(rawURL[:schemeEnd])
	kind, ok := schemes[scheme]
	if !ok {
		return Spec{}, parseError("unsupported scheme %q: want redis://, rediss://, redis-sentinel:// or redis-cluster://", scheme)
	}
	s := Spec{Mode: kind.mode, TLS: kind.tls}

	rest := rawURL[schemeEnd+3:]
	if i := strings.IndexByte(rest, '#'); i >= 0 {
		return Spec{}, parseError("unexpected fragment (#…); percent-encode '#' in passwords as %%23")
	}
	// RFC 3986: the authority ends at the first '/' or '?'; the userinfo
	// ends at the authority's last '@'.
	authority, pathQuery := rest, ""
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		authority, pathQuery = rest[:i], rest[i:]
	}
	hosts := authority
	if i := strings.LastIndexByte(authority, '@'); i >= 0 {
		if err := s.parseUserinfo(authority[:i]); err != nil {
			return Spec{}, err
		}
		hosts = authority[i+1:]
	}
	if err := s.parseHosts(hosts); err != nil {
		return Spec{}, err
	}
	path, rawQuery := pathQuery, ""
	if i := strings.IndexByte(pathQuery, '?'); i >= 0 {
		path, rawQuery = pathQuery[:i], pathQuery[i+1:]
	}
	if err := s.parseDB(path); err != nil {
		return Spec{}, err
	}
	if err := s.parseQuery(rawQuery); err != nil {
		return Spec{}, err
	}
	return s, nil
}

func (s *Spec) parseUserinfo(userinfo string) error {
	user, pass, hasPass := strings.Cut(userinfo, ":")
	var err error
	if s.Username, err = url.PathUnescape(user); err != nil {
		return parseError("bad percent-encoding in the username")
	}
	if hasPass {
		if s.Password, err = url.PathUnescape(pass); err != nil {
			return parseError("bad percent-encoding in the password")
		}
	}
	return nil
}

func (s *Spec) parseHosts(hosts string) error {
	if hosts == "" {
		return parseError("no host")
	}
	defPort := DefaultPort
	if s.Mode == Sentinel {
		defPort = DefaultSentinelPort
	}
	for _, h := range strings.Split(hosts, ",") {
		addr, err := normalizeAddr(h, defPort)
		if err != nil {
			return err
		}
		if slices.Contains(s.Addrs, addr) {
			return parseError("host %q listed twice", addr)
		}
		s.Addrs = append(s.Addrs, addr)
	}
	if s.Mode == Single && len(s.Addrs) > 1 {
		return parseError("%d hosts in a %s:// URL: list several hosts only with redis-sentinel:// or redis-cluster://",
			len(s.Addrs), map[bool]string{false: "redis", true: "rediss"}[s.TLS])
	}
	return nil
}

func normalizeAddr(h string, defPort int) (string, error) {
	h = strings.TrimSpace(h)
	if h == "" {
		return "", parseError("empty host in the host list")
	}
	host, port := h, ""
	// A host with a port, or a bracketed IPv6 literal with or without one.
	if strings.HasPrefix(h, "[") || strings.Count(h, ":") == 1 {
		if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
			host = h[1 : len(h)-1]
		} else {
			var err error
			if host, port, err = net.SplitHostPort(h); err != nil {
				return "", parseError("bad host %q: want host:port", h)
			}
		}
	} else if strings.Contains(h, ":") {
		return "", parseError("bad host %q: write IPv6 addresses in brackets, [::1]:6379", h)
	}
	if host == "" {
		return "", parseError("bad host %q: empty host name", h)
	}
	if strings.ContainsAny(host, " /?#@") {
		return "", parseError("bad host %q", h)
	}
	p := defPort
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return "", parseError("bad port %q in host %q: want 1..65535", port, h)
		}
		p = n
	}
	return net.JoinHostPort(host, strconv.Itoa(p)), nil
}

func (s *Spec) parseDB(path string) error {
	path = strings.Trim(path, "/")
	if path == "" {
		return nil
	}
	db, err := strconv.Atoi(path)
	if err != nil || db < 0 {
		return parseError("bad database %q in the path: want a number, e.g. /0", path)
	}
	if s.Mode == Cluster && db != 0 {
		return parseError("database %d in a cluster URL: Redis Cluster has only database 0", db)
	}
	s.DB = db
	return nil
}

var commonOptions = []string{"dial_timeout", "read_timeout", "write_timeout", "pool_size"}
var sentinelOptions = []string{"master", "sentinel_username", "sentinel_password"}

func (s *Spec) parseQuery(rawQuery string) error {
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return parseError("bad query string: %s", redactQueryErr(err))
	}
	allowed := commonOptions
	if s.Mode == Sentinel {
		allowed = append(slices.Clone(sentinelOptions), commonOptions...)
	}
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !slices.Contains(allowed, k) {
			if slices.Contains(sentinelOptions, k) {
				return parseError("option %q is only for redis-sentinel:// URLs", k)
			}
			return parseError("unknown option %q: allowed %s", k, strings.Join(allowed, ", "))
		}
		if len(q[k]) > 1 {
			return parseError("option %q given %d times", k, len(q[k]))
		}
		v := q[k][0]
		switch k {
		case "master":
			s.MasterName = v
		case "sentinel_username":
			s.SentinelUsername = v
		case "sentinel_password":
			s.SentinelPassword = v
		case "dial_timeout", "read_timeout", "write_timeout":
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 || d > time.Minute {
				return parseError("option %s=%q: want a duration in (0, 1m], e.g. 500ms or 3s", k, v)
			}
			switch k {
			case "dial_timeout":
				s.DialTimeout = d
			case "read_timeout":
				s.ReadTimeout = d
			default:
				s.WriteTimeout = d
			}
		case "pool_size":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 10000 {
				return parseError("option pool_size=%q: want an integer in 1..10000", v)
			}
			s.PoolSize = n
		}
	}
	if s.Mode == Sentinel && s.MasterName == "" {
		return parseError("redis-sentinel:// needs ?master=NAME (the name the Sentinels monitor)")
	}
	return nil
}

// redactQueryErr keeps url.ParseQuery's complaint without the offending
// text, which may be (part of) a sentinel password.
func redactQueryErr(err error) string {
	var e url.EscapeError
	if errors.As(err, &e) {
		return "bad percent-encoding"
	}
	return "malformed"
}

// String is the URL with every password replaced by "xxxxx", suitable for
// logs and error messages. Parse(s.String()) gives s back when no password
// is set.
func (s Spec) String() string {
	var b strings.Builder
	scheme := "redis"
	switch {
	case s.Mode == Single && s.TLS:
		scheme = "rediss"
	case s.Mode == Sentinel:
		scheme = "redis-sentinel"
	case s.Mode == Cluster:
		scheme = "redis-cluster"
	}
	b.WriteString(scheme + "://")
	if s.Username != "" || s.Password != "" {
		b.WriteString(url.PathEscape(s.Username))
		if s.Password != "" {
			b.WriteString(":xxxxx")
		}
		b.WriteByte('@')
	}
	b.WriteString(strings.Join(s.Addrs, ","))
	if s.DB != 0 {
		b.WriteString("/" + strconv.Itoa(s.DB))
	}
	q := url.Values{}
	if s.MasterName != "" {
		q.Set("master", s.MasterName)
	}
	if s.SentinelUsername != "" {
		q.Set("sentinel_username", s.SentinelUsername)
	}
	if s.SentinelPassword != "" {
		q.Set("sentinel_password", "xxxxx")
	}
	if s.DialTimeout != 0 {
		q.Set("dial_timeout", s.DialTimeout.String())
	}
	if s.ReadTimeout != 0 {
		q.Set("read_timeout", s.ReadTimeout.String())
	}
	if s.WriteTimeout != 0 {
		q.Set("write_timeout", s.WriteTimeout.String())
	}
	if s.PoolSize != 0 {
		q.Set("pool_size", strconv.Itoa(s.PoolSize))
	}
	if len(q) > 0 {
		b.WriteString("?" + q.Encode())
	}
	return b.String()
}
