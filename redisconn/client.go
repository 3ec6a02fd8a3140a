package redisconn

import (
	"crypto/tls"
	"net"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// Client returns a new go-redis client for s; the caller closes it.
//
//   - Single: redis.NewClient (*redis.Client).
//   - Sentinel: redis.NewFailoverClient (*redis.Client that asks the
//     Sentinels for the current primary and follows failovers).
//   - Cluster: redis.NewClusterClient (*redis.ClusterClient).
//
// Timeouts and retries are the Default* constants unless the URL overrides
// them; a context deadline shorter than the read/write timeout is honoured
// too (ContextTimeoutEnabled), so a caller's deadline bounds its Redis call.
// The client does not connect until first used.
func (s Spec) Client() redis.UniversalClient {
	dial, read, write := s.timeouts()
	var tlsConfig *tls.Config
	if s.TLS {
		host, _, err := net.SplitHostPort(s.Addrs[0])
		if err != nil {
			host = s.Addrs[0]
		}
		tlsConfig = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	}
	// DisableIdentity: no CLIENT SETINFO round trip on every new connection
	// (Redis < 7.2 and miniredis reject it anyway).
	// Maintenance notifications are a Redis Enterprise/Cloud feature; off,
	// so that connecting to plain Redis (or miniredis) sends no handshake
	// that fails and gets logged.
	maint := &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	switch s.Mode {
	case Sentinel:
		return redis.NewFailoverClient(&redis.FailoverOptions{
			MasterName:       s.MasterName,
			SentinelAddrs:    s.Addrs,
			SentinelUsername: s.SentinelUsername,
			SentinelPassword: s.SentinelPassword,
			Username:         s.Username,
			Password:         s.Password,
			DB:               s.DB,
			MaxRetries:       DefaultMaxRetries,
			MinRetryBackoff:  DefaultMinRetryBackoff,
			MaxRetryBackoff:  DefaultMaxRetryBackoff,
			DialTimeout:      dial,
			ReadTimeout:      read,
			WriteTimeout:     write,
			PoolSize:         s.PoolSize,
			TLSConfig:        tlsConfig,
			DisableIdentity:  true,
		})
	case Cluster:
		return redis.NewClusterClient(&redis.ClusterOptions{
			Addrs:                    s.Addrs,
			Username:                 s.Username,
			Password:                 s.Password,
			MaxRetries:               DefaultMaxRetries,
			MinRetryBackoff:          DefaultMinRetryBackoff,
			MaxRetryBackoff:          DefaultMaxRetryBackoff,
			DialTimeout:              dial,
			ReadTimeout:              read,
			WriteTimeout:             write,
			PoolSize:                 s.PoolSize,
			TLSConfig:                tlsConfig,
			DisableIdentity:          true,
			ContextTimeoutEnabled:    true,
			MaintNotificationsConfig: maint,
		})
	default:
		return redis.NewClient(&redis.Options{
			Addr:                     s.Addrs[0],
			Username:                 s.Username,
			Password:                 s.Password,
			DB:                       s.DB,
			MaxRetries:               DefaultMaxRetries,
			MinRetryBackoff:          DefaultMinRetryBackoff,
			MaxRetryBackoff:          DefaultMaxRetryBackoff,
			DialTimeout:              dial,
			ReadTimeout:              read,
			WriteTimeout:             write,
			PoolSize:                 s.PoolSize,
			TLSConfig:                tlsConfig,
			DisableIdentity:          true,
			ContextTimeoutEnabled:    true,
			MaintNotificationsConfig: maint,
		})
	}
}

func (s Spec) timeouts() (dial, read, write time.Duration) {
	dial, read, write = DefaultDialTimeout, DefaultReadTimeout, DefaultWriteTimeout
	if s.DialTimeout > 0 {
		dial = s.DialTimeout
	}
	if s.ReadTimeout > 0 {
		read = s.ReadTimeout
	}
	if s.WriteTimeout > 0 {
		write = s.WriteTimeout
	}
	return dial, read, write
}

// ConnOpt adapts s to asynq.RedisConnOpt for APIs that take one and own
// the client they make (asynqmon.Options.RedisConnOpt, asynq.NewServer):
// each MakeRedisClient call returns a new Client().
func (s Spec) ConnOpt() asynq.RedisConnOpt { return connOpt{s} }

type connOpt struct{ s Spec }

func (c connOpt) MakeRedisClient() interface{} { return c.s.Client() }
