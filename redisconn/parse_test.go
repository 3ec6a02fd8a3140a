package redisconn

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestParseValid(t *testing.T) {
	cases := []struct {
		url  string
		want Spec
	}{
		{"redis://localhost", Spec{Mode: Single, Addrs: []string{"localhost:6379"}}},
		{"redis://127.0.0.1:6380/3", Spec{Mode: Single, Addrs: []string{"127.0.0.1:6380"}, DB: 3}},
		{"REDIS://Cache:6380/", Spec{Mode: Single, Addrs: []string{"Cache:6380"}}},
		{"redis://:s3cret@host:6379/0", Spec{Mode: Single, Addrs: []string{"host:6379"}, Password: "s3cret"}},
		{"redis://plyr@host", Spec{Mode: Single, Addrs: []string{"host:6379"}, Username: "plyr"}},
		{"redis://plyr:p%40ss%2Fw%3F@host/2", Spec{Mode: Single, Addrs: []string{"host:6379"}, Username: "plyr", Password: "p@ss/w?", DB: 2}},
		{"redis://u:pa:ss@host", Spec{Mode: Single, Addrs: []string{"host:6379"}, Username: "u", Password: "pa:ss"}},
		{"redis://u:p@ss@host", Spec{Mode: Single, Addrs: []string{"host:6379"}, Username: "u", Password: "p@ss"}},
		{"redis://[::1]:7000", Spec{Mode: Single, Addrs: []string{"[::1]:7000"}}},
		{"redis://[::1]", Spec{Mode: Single, Addrs: []string{"[::1]:6379"}}},
		{
			"rediss://u:p@redis.example.com:6380/1?dial_timeout=2s&read_timeout=500ms&write_timeout=1s&pool_size=50",
			Spec{Mode: Single, TLS: true, Addrs: []string{"redis.example.com:6380"}, Username: "u", Password: "p", DB: 1,
				DialTimeout: 2 * time.Second, ReadTimeout: 500 * time.Millisecond, WriteTimeout: time.Second, PoolSize: 50},
		},
		// The fields asynq.ParseRedisURI drops or misplaces: username, the
		// primary's password, the database, and the Sentinels' credentials.
		{
			"redis-sentinel://app:primarypw@s1:26379,s2:26380,s3/4?master=mymaster&sentinel_username=sent&sentinel_password=sent%2Bpw",
			Spec{Mode: Sentinel, Addrs: []string{"s1:26379", "s2:26380", "s3:26379"}, Username: "app", Password: "primarypw", DB: 4,
				MasterName: "mymaster", SentinelUsername: "sent", SentinelPassword: "sent+pw"},
		},
		{"redis-sentinel://127.0.0.1:7121?master=m", Spec{Mode: Sentinel, Addrs: []string{"127.0.0.1:7121"}, MasterName: "m"}},
		{
			"redis-cluster://u:p@n1:7000,n2:7001,n3:7002?pool_size=20",
			Spec{Mode: Cluster, Addrs: []string{"n1:7000", "n2:7001", "n3:7002"}, Username: "u", Password: "p", PoolSize: 20},
		},
		{"redis+cluster://n1:7000,n2", Spec{Mode: Cluster, Addrs: []string{"n1:7000", "n2:6379"}}},
		{"redis-cluster://n1:7000/0", Spec{Mode: Cluster, Addrs: []string{"n1:7000"}}},
	}
	for _, c := range cases {
		t.Run(c.url, func(t *testing.T) {
			got, err := Parse(c.url)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("Parse(%q)\n got %+v\nwant %+v", c.url, got, c.want)
			}
		})
	}
}

func TestParseInvalid(t *testing.T) {
	cases := []struct{ url, want string }{
		{"localhost:6379", "missing scheme"},
		{"http://host", `unsupported scheme "http"`},
		{"redis-socket:///tmp/r.sock", `unsupported scheme "redis-socket"`},
		{"redis://", "no host"},
		{"redis://SECRETUSER:SECRETPW@", "no host"},
		{"redis://h1:1,h2:2", "2 hosts in a redis:// URL"},
		{"redis://h1,,h2", "empty host"},
		{"redis://host:99999", `bad port "99999" in host "host:99999"`},
		{"redis://host:abc", `bad port "abc"`},
		{"redis://:6379", "empty host name"},
		{"redis://::1:6379", "IPv6 addresses in brackets"},
		{"redis://host/abc", `bad database "abc"`},
		{"redis://host/-1", `bad database "-1"`},
		{"redis://host/1/2", `bad database "1/2"`},
		{"redis-cluster://n1/2", "database 2 in a cluster URL"},
		{"redis-sentinel://s1", "needs ?master=NAME"},
		{"redis-sentinel://s1,s1?master=m", `host "s1:26379" listed twice`},
		{"redis://host?master=x", `option "master" is only for redis-sentinel://`},
		{"redis-cluster://n1?sentinel_password=SECRETPW", `option "sentinel_password" is only for redis-sentinel://`},
		{"redis://host?pool=3", `unknown option "pool": allowed dial_timeout, read_timeout, write_timeout, pool_size`},
		{"redis://host?dial_timeout=5", `option dial_timeout="5": want a duration`},
		{"redis://host?read_timeout=0s", `option read_timeout="0s"`},
		{"redis://host?write_timeout=2m", `option write_timeout="2m"`},
		{"redis://host?pool_size=0", `option pool_size="0": want an integer in 1..10000`},
		{"redis://host?pool_size=1&pool_size=2", `option "pool_size" given 2 times`},
		{"redis://u:SECRETPW%zz@host", "bad percent-encoding in the password"},
		{"redis://SECRETUSER%zz:SECRETPW@host", "bad percent-encoding in the username"},
		{"redis://u:SECRETPW#x@host", "unexpected fragment"},
		{"redis-sentinel://s1?master=m&sentinel_password=SECRETPW%zz", "bad query string: bad percent-encoding"},
	}
	for _, c := range cases {
		t.Run(c.url, func(t *testing.T) {
			_, err := Parse(c.url)
			if err == nil {
				t.Fatalf("Parse(%q) succeeded, want error containing %q", c.url, c.want)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "REDIS_URL: ") || !strings.Contains(msg, c.want) {
				t.Fatalf("error %q: want prefix REDIS_URL and %q", msg, c.want)
			}
			if strings.Contains(msg, "SECRET") {
				t.Fatalf("error %q leaks a credential", msg)
			}
		})
	}
	if _, err := Parse("  "); !errors.Is(err, ErrEmpty) {
		t.Fatalf("Parse(blank) = %v, want ErrEmpty", err)
	}
}

func TestStringRedacts(t *testing.T) {
	cases := []struct{ url, want string }{
		{"redis://localhost", "redis://localhost:6379"},
		{"rediss://:pw@h:1/2", "rediss://:xxxxx@h:1/2"},
		{"redis://user@h", "redis://user@h:6379"},
		{
			"redis-sentinel://app:primarypw@s1,s2:1/4?master=mm&sentinel_username=sent&sentinel_password=sentpw&pool_size=3",
			"redis-sentinel://app:xxxxx@s1:26379,s2:1/4?master=mm&pool_size=3&sentinel_password=xxxxx&sentinel_username=sent",
		},
		{"redis+cluster://u:p@n1:7000,n2:7001?read_timeout=1s", "redis-cluster://u:xxxxx@n1:7000,n2:7001?read_timeout=1s"},
	}
	for _, c := range cases {
		s, err := Parse(c.url)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.String(); got != c.want {
			t.Errorf("String() = %q, want %q", got, c.want)
		}
		if strings.Contains(s.String(), "pw") {
			t.Errorf("String() %q leaks a password", s.String())
		}
	}
	// Without passwords, String round-trips.
	s, _ := Parse("redis-sentinel://u@s1:1,s2:2/3?master=m&sentinel_username=x&dial_timeout=1s")
	back, err := Parse(s.String())
	if err != nil || !reflect.DeepEqual(back, s) {
		t.Fatalf("round trip: %+v, %v; want %+v", back, err, s)
	}
}

func TestClientOptions(t *testing.T) {
	t.Run("single", func(t *testing.T) {
		s, _ := Parse("rediss://u:p@cache.internal:6380/2?dial_timeout=2s&pool_size=7")
		c := s.Client()
		defer c.Close()
		rc, ok := c.(*redis.Client)
		if !ok {
			t.Fatalf("Client() is %T, want *redis.Client", c)
		}
		o := rc.Options()
		if o.Addr != "cache.internal:6380" || o.Username != "u" || o.Password != "p" || o.DB != 2 ||
			o.DialTimeout != 2*time.Second || o.ReadTimeout != DefaultReadTimeout || o.WriteTimeout != DefaultWriteTimeout ||
			o.PoolSize != 7 || o.MaxRetries != DefaultMaxRetries ||
			o.MinRetryBackoff != DefaultMinRetryBackoff || o.MaxRetryBackoff != DefaultMaxRetryBackoff ||
			!o.ContextTimeoutEnabled {
			t.Fatalf("unexpected options %+v", o)
		}
		if o.TLSConfig == nil || o.TLSConfig.ServerName != "cache.internal" {
			t.Fatalf("TLS config %+v, want ServerName cache.internal", o.TLSConfig)
		}
	})
	t.Run("sentinel", func(t *testing.T) {
		s, _ := Parse("redis-sentinel://app:ppw@s1,s2/5?master=mm&sentinel_password=spw")
		c := s.Client()
		defer c.Close()
		rc, ok := c.(*redis.Client)
		if !ok {
			t.Fatalf("Client() is %T, want *redis.Client (failover)", c)
		}
		o := rc.Options()
		// The primary connection carries the primary's credentials and DB.
		if o.Username != "app" || o.Password != "ppw" || o.DB != 5 || o.ReadTimeout != DefaultReadTimeout || o.TLSConfig != nil {
			t.Fatalf("unexpected primary options %+v", o)
		}
	})
	t.Run("cluster", func(t *testing.T) {
		s, _ := Parse("redis-cluster://u:p@n1:7000,n2:7001?read_timeout=1s")
		c := s.Client()
		defer c.Close()
		cc, ok := c.(*redis.ClusterClient)
		if !ok {
			t.Fatalf("Client() is %T, want *redis.ClusterClient", c)
		}
		o := cc.Options()
		if !reflect.DeepEqual(o.Addrs, []string{"n1:7000", "n2:7001"}) || o.Username != "u" || o.Password != "p" ||
			o.ReadTimeout != time.Second || o.DialTimeout != DefaultDialTimeout {
			t.Fatalf("unexpected cluster options %+v", o)
		}
	})
}
