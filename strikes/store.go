package strikes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/redis/go-redis/v9"

	"github.com/plyr-fm/plyrtasks/tasks"
)

// Strike is one rule in force.
type Strike struct {
	Rule
	// Key is Rule.Key(), for display and for the API's clients.
	Key string `json:"key"`
	// Reason is the operator's why; a struck task is archived with it.
	Reason string `json:"reason"`
	// By is who struck (WithActor), "unknown" when nobody said.
	By string `json:"by"`
	// At is when the strike was made (or last changed).
	At time.Time `json:"at"`
}

// record is a strike's value in the hash.
type record struct {
	Reason string    `json:"reason"`
	By     string    `json:"by"`
	At     time.Time `json:"at"`
}

// HashKey is the Redis hash holding namespace's strikes.
func HashKey(namespace string) string { return namespaceOr(namespace) + ":strikes" }

// Channel is the pub/sub channel on which namespace's strike changes are
// announced (the message is the changed rule's key).
func Channel(namespace string) string { return namespaceOr(namespace) + ":strikes:changed" }

func namespaceOr(ns string) string {
	if ns == "" {
		return "plyr"
	}
	return ns
}

// ErrNotStruck is returned (wrapped) by Restore for a rule that has no
// strike.
var ErrNotStruck = errors.New("no such strike")

// Options configure a Store and a Watcher. Every field is optional.
type Options struct {
	// Namespace is the deployment's (TASKS_NAMESPACE); it must match the
	// workers' and producers'. Default "plyr".
	Namespace string
	// PollInterval is how often a Watcher rereads every strike, whatever
	// pub/sub says: the longest a change can take to reach a worker whose
	// pub/sub connection missed it. Default 5s.
	PollInterval time.Duration
	// Logger receives warnings (Redis unreachable, an announcement lost).
	// Default slog.Default().
	Logger *slog.Logger
}

// DefaultPollInterval is Options.PollInterval's default.
const DefaultPollInterval = 5 * time.Second

func (o Options) withDefaults() Options {
	o.Namespace = namespaceOr(o.Namespace)
	if o.PollInterval <= 0 {
		o.PollInterval = DefaultPollInterval
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Store reads and writes the strikes of one namespace. It is safe for
// concurrent use.
type Store struct {
	rdb  redis.UniversalClient
	ns   string
	opts Options
}

// NewStore returns the store of the strikes of opts.Namespace.
func NewStore(rdb redis.UniversalClient, opts Options) *Store {
	opts = opts.withDefaults()
	return &Store{rdb: rdb, ns: opts.Namespace, opts: opts}
}

type actorKey struct{}

// WithActor returns ctx saying who makes the strikes done with it ("cli:
// alice@host", "api"): Strike records it as Strike.By.
func WithActor(ctx context.Context, by string) context.Context {
	return context.WithValue(ctx, actorKey{}, by)
}

func actor(ctx context.Context) string {
	if by, _ := ctx.Value(actorKey{}).(string); by != "" {
		return by
	}
	return "unknown"
}

// Strike blocks the tasks rule matches, or replaces the reason of an
// existing strike of the same rule, and tells every Watcher. The reason is
// required (1 to MaxReasonLen characters, no control characters): it is
// what operators and the archived tasks show. Errors about the input are
// *tasks.FieldError ("type", "arg", "reason"). Check the rule against the
// catalog first (Rule.ValidateFor) where one is at hand.
func (s *Store) Strike(ctx context.Context, rule Rule, reason string) (Strike, error) {
	reason = strings.TrimSpace(reason)
	var errs []error
	if err := rule.Validate(); err != nil {
		errs = append(errs, err)
	}
	switch {
	case reason == "":
		errs = append(errs, &tasks.FieldError{Field: "reason", Reason: "is required: say why, it is shown on every task the strike stops"})
	case len(reason) > MaxReasonLen:
		errs = append(errs, &tasks.FieldError{Field: "reason", Reason: fmt.Sprintf("must be at most %d characters", MaxReasonLen)})
	case strings.ContainsFunc(reason, unicode.IsControl):
		errs = append(errs, &tasks.FieldError{Field: "reason", Reason: "must be one line without control characters"})
	}
	if err := errors.Join(errs...); err != nil {
		return Strike{}, err
	}
	rec := record{Reason: reason, By: actor(ctx), At: time.Now().UTC().Truncate(time.Millisecond)}
	b, err := json.Marshal(rec)
	if err != nil {
		return Strike{}, fmt.Errorf("strikes: encode: %w", err)
	}
	key := rule.Key()
	if err := s.rdb.HSet(ctx, HashKey(s.ns), key, b).Err(); err != nil {
		return Strike{}, fmt.Errorf("strikes: strike %s: %w", key, err)
	}
	s.announce(ctx, key)
	return Strike{Rule: rule, Key: key, Reason: rec.Reason, By: rec.By, At: rec.At}, nil
}

// Restore lifts the strike of rule (exactly that rule: restoring a type
// leaves its argument strikes in force) and tells every Watcher. It
// returns the strike it removed, or an error wrapping ErrNotStruck.
func (s *Store) Restore(ctx context.Context, rule Rule) (Strike, error) {
	if err := rule.Validate(); err != nil {
		return Strike{}, err
	}
	key := rule.Key()
	// One round trip that reads and removes, so two restores cannot both
	// report the same strike.
	var get *redis.StringCmd
	var del *redis.IntCmd
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		get = p.HGet(ctx, HashKey(s.ns), key)
		del = p.HDel(ctx, HashKey(s.ns), key)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return Strike{}, fmt.Errorf("strikes: restore %s: %w", key, err)
	}
	if del.Val() == 0 {
		return Strike{}, fmt.Errorf("%w: %s", ErrNotStruck, key)
	}
	s.announce(ctx, key)
	st, _ := decode(key, get.Val())
	return st, nil
}

// List returns every strike, sorted by key.
func (s *Store) List(ctx context.Context) ([]Strike, error) {
	all, err := s.load(ctx)
	if err != nil {
		return nil, err
	}
	return all, nil
}

// load reads the hash. An entry that cannot be parsed still counts (it
// blocks what its key says, with a reason saying the record is
// unreadable): failing open on a corrupt entry would let through exactly
// what an operator meant to stop.
func (s *Store) load(ctx context.Context) ([]Strike, error) {
	m, err := s.rdb.HGetAll(ctx, HashKey(s.ns)).Result()
	if err != nil {
		return nil, fmt.Errorf("strikes: read %s: %w", HashKey(s.ns), err)
	}
	out := make([]Strike, 0, len(m))
	for key, val := range m {
		st, err := decode(key, val)
		if err != nil {
			continue // a key that names no rule cannot match anything
		}
		out = append(out, st)
	}
	sortByKey(out)
	return out, nil
}

func sortByKey(s []Strike) {
	slices.SortFunc(s, func(a, b Strike) int { return strings.Compare(a.Key, b.Key) })
}

func decode(key, val string) (Strike, error) {
	rule, err := ParseKey(key)
	if err != nil {
		return Strike{}, err
	}
	st := Strike{Rule: rule, Key: key}
	var rec record
	if err := json.Unmarshal([]byte(val), &rec); err != nil || rec.Reason == "" {
		st.Reason = "unreadable strike record"
		return st, nil
	}
	st.Reason, st.By, st.At = rec.Reason, rec.By, rec.At
	return st, nil
}

// announce publishes a change. A lost announcement only delays it until
// each Watcher's next poll, so a failure is logged, not returned: the
// strike itself is stored.
func (s *Store) announce(ctx context.Context, key string) {
	if err := s.rdb.Publish(ctx, Channel(s.ns), key).Err(); err != nil {
		s.opts.Logger.WarnContext(ctx, "strikes: announce change failed; watchers pick it up at their next poll",
			slog.String("strike", key), slog.String("error", err.Error()))
	}
}
