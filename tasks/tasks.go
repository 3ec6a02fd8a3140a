package tasks

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// Args is the arguments of one task type. Kind returns the task type name;
// it must be a constant for the type.
type Args interface {
	Kind() string
}

// ArgsWithOpts is implemented by args that have default options.
type ArgsWithOpts interface {
	Args
	InsertOpts() Opts
}

// Validator is implemented by args that check their own fields. Validate
// returns a *FieldError (or errors joined from several) naming the field.
type Validator interface {
	Validate() error
}

// UniqueKeyer is implemented by args whose uniqueness is narrower than the
// whole payload (a scrobble is unique per session and track, not per
// played_at). Without it the unique key is the canonical JSON payload.
type UniqueKeyer interface {
	UniqueKey() string
}

// Queues plyrtasks uses, before namespacing (see Namespaced). Priorities are
// in QueuePriorities.
const (
	QueueCritical = "critical" // user-visible PDS writes: likes, comments, scrobbles
	QueueDefault  = "default"  // syncs, scans, periodic tasks
	QueueBulk     = "bulk"     // long, heavy work: media exports
)

// QueuePriorities is the weighted priority of each queue (asynq's Queues
// config). It returns a new map each call.
func QueuePriorities() map[string]int {
	return map[string]int{QueueCritical: 6, QueueDefault: 3, QueueBulk: 1}
}

// Namespaced prefixes a queue name with the deployment namespace, so two
// deployments can share one Redis without taking each other's tasks.
func Namespaced(namespace, queue string) string {
	if namespace == "" {
		return queue
	}
	return namespace + ":" + queue
}

// Opts are per-task insert options. A zero field means "not set": defaults
// from the type's InsertOpts apply, then the package defaults in Defaults.
type Opts struct {
	// Queue is the logical queue (QueueCritical, QueueDefault, QueueBulk).
	Queue string
	// MaxRetry is how many times a failed task is retried before it is
	// archived. Use NoRetry for zero retries (0 means "not set").
	MaxRetry int
	// Timeout bounds one attempt. Sub-second values round up to a second
	// because asynq stores whole seconds (a 500ms timeout would become 0,
	// meaning none).
	Timeout time.Duration
	// Retention keeps a completed task (and its result) visible this long.
	Retention time.Duration
	// UniqueFor makes the task unique while it is queued or running, for at
	// most this long: a second enqueue with the same unique key returns the
	// existing task as a duplicate. 0 means not unique.
	UniqueFor time.Duration
	// ProcessAt / ProcessIn delay the task.
	ProcessAt time.Time
	ProcessIn time.Duration
	// TaskID sets the task's ID (otherwise a random UUID).
	TaskID string
}

// NoRetry as Opts.MaxRetry means "do not retry".
const NoRetry = -1

// Defaults are the options of a type that declares none.
func Defaults() Opts {
	return Opts{Queue: QueueDefault, MaxRetry: 10, Timeout: 5 * time.Minute, Retention: 24 * time.Hour}
}

// Merge returns o with every unset field taken from base.
func (o Opts) Merge(base Opts) Opts {
	if o.Queue == "" {
		o.Queue = base.Queue
	}
	if o.MaxRetry == 0 {
		o.MaxRetry = base.MaxRetry
	}
	if o.Timeout == 0 {
		o.Timeout = base.Timeout
	}
	if o.Retention == 0 {
		o.Retention = base.Retention
	}
	if o.UniqueFor == 0 {
		o.UniqueFor = base.UniqueFor
	}
	if o.ProcessAt.IsZero() {
		o.ProcessAt = base.ProcessAt
	}
	if o.ProcessIn == 0 {
		o.ProcessIn = base.ProcessIn
	}
	if o.TaskID == "" {
		o.TaskID = base.TaskID
	}
	return o
}

// Retries is MaxRetry with NoRetry resolved to 0.
func (o Opts) Retries() int {
	if o.MaxRetry < 0 {
		return 0
	}
	return o.MaxRetry
}

// Def is the declaration of one task type.
type Def struct {
	Kind string
	// Opts are the type's default options, already merged with Defaults.
	Opts Opts
	// Periodic, when non-zero, makes the worker enqueue this type once per
	// interval across all workers (with empty args).
	Periodic time.Duration
	// Internal types are not enqueued by producers (periodic ticks).
	Internal bool
	newArgs  func() Args
}

// NewArgs returns a pointer to a zero value of the type's args.
func (d Def) NewArgs() Args { return d.newArgs() }

// Declare builds the Def of args type A. A must be a struct type whose
// pointer also implements Args (methods on the value receiver).
func Declare[A Args]() Def {
	var zero A
	opts := Defaults()
	if w, ok := any(zero).(ArgsWithOpts); ok {
		opts = w.InsertOpts().Merge(opts)
	}
	return Def{Kind: zero.Kind(), Opts: opts, newArgs: func() Args { return any(new(A)).(Args) }}
}

// periodic marks a Def as a periodic, internal type.
func periodic(d Def, every time.Duration) Def {
	d.Periodic = every
	d.Internal = true
	return d
}

// Catalog is the set of declared types, by kind.
type Catalog struct {
	defs map[string]Def
}

// NewCatalog builds a catalog from defs. It panics on a duplicate kind: that
// is a programming error caught by the first test run.
func NewCatalog(defs ...Def) *Catalog {
	c := &Catalog{defs: make(map[string]Def, len(defs))}
	for _, d := range defs {
		if _, dup := c.defs[d.Kind]; dup {
			panic("tasks: kind declared twice: " + d.Kind)
		}
		c.defs[d.Kind] = d
	}
	return c
}

// Lookup returns the declaration of kind.
func (c *Catalog) Lookup(kind string) (Def, bool) {
	d, ok := c.defs[kind]
	return d, ok
}

// Kinds returns every declared kind, sorted.
func (c *Catalog) Kinds() []string {
	out := make([]string, 0, len(c.defs))
	for k := range c.defs {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Defs returns every declaration, sorted by kind.
func (c *Catalog) Defs() []Def {
	out := make([]Def, 0, len(c.defs))
	for _, k := range c.Kinds() {
		out = append(out, c.defs[k])
	}
	return out
}

// ErrUnknownKind is returned (wrapped) for a task type nobody declared.
var ErrUnknownKind = errors.New("unknown task type")

// MaxPayloadBytes bounds a payload. Larger ones are refused before they reach
// Redis: every task here carries IDs, not content, except comment text.
const MaxPayloadBytes = 64 << 10

// ErrPayloadTooLarge is returned (wrapped) for payloads over MaxPayloadBytes.
var ErrPayloadTooLarge = errors.New("payload too large")

// Decode parses and validates a JSON payload of kind. Unknown fields,
// trailing data and invalid values are errors that name the field
// (*FieldError); the caller archives such a task instead of retrying it.
func (c *Catalog) Decode(kind string, payload []byte) (Args, error) {
	d, ok := c.defs[kind]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownKind, kind)
	}
	return d.Decode(payload)
}

// Decode parses and validates a JSON payload of this type.
func (d Def) Decode(payload []byte) (Args, error) {
	if len(payload) > MaxPayloadBytes {
		return nil, fmt.Errorf("%s: %w (%d bytes, limit %d)", d.Kind, ErrPayloadTooLarge, len(payload), MaxPayloadBytes)
	}
	a := d.newArgs()
	if len(bytes.TrimSpace(payload)) == 0 {
		payload = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(a); err != nil {
		return nil, jsonFieldError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, &FieldError{Field: "(body)", Reason: "unexpected data after the JSON object"}
	}
	if v, ok := a.(Validator); ok {
		if err := v.Validate(); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// Encode validates args and returns their JSON payload.
func Encode(a Args) ([]byte, error) {
	if v, ok := a.(Validator); ok {
		if err := v.Validate(); err != nil {
			return nil, err
		}
	}
	b, err := json.Marshal(a)
	if err != nil {
		return nil, fmt.Errorf("%s: encode args: %w", a.Kind(), err)
	}
	if len(b) > MaxPayloadBytes {
		return nil, fmt.Errorf("%s: %w (%d bytes, limit %d)", a.Kind(), ErrPayloadTooLarge, len(b), MaxPayloadBytes)
	}
	return b, nil
}

// UniqueKey returns a's unique key: UniqueKeyer's when implemented, else the
// canonical JSON payload.
func UniqueKey(a Args) string {
	if u, ok := a.(UniqueKeyer); ok {
		return u.UniqueKey()
	}
	b, _ := json.Marshal(a)
	return string(b)
}

// FieldError is a validation error naming the field (its JSON name).
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// IsInvalid reports whether err is a payload that can never be processed
// (a decode or validation failure, or an oversized payload).
func IsInvalid(err error) bool {
	var fe *FieldError
	return errors.As(err, &fe) || errors.Is(err, ErrPayloadTooLarge)
}

func jsonFieldError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		f := te.Field
		if f == "" {
			f = "(body)"
		}
		return &FieldError{Field: f, Reason: fmt.Sprintf("must be %s, got %s", te.Type, te.Value)}
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return &FieldError{Field: "(body)", Reason: fmt.Sprintf("invalid JSON at byte %d: %v", se.Offset, err)}
	}
	msg := err.Error()
	if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return &FieldError{Field: strings.Trim(f, `"`), Reason: "unknown field"}
	}
	if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
		return &FieldError{Field: "(body)", Reason: "incomplete JSON"}
	}
	return &FieldError{Field: "(body)", Reason: msg}
}
