package tasks

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
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

// TaskIDer is implemented by args that name their own task (an export's
// task ID is its export ID, so status, cancel and the export's row share
// one ID). An explicit TaskID option still wins.
type TaskIDer interface {
	TaskID() string
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
	// fields are the JSON names of the args' fields: a payload's top-level
	// keys must be exactly these (encoding/json alone would also take
	// "TRACK_ID" for track_id, and the last of a repeated key).
	fields map[string]bool
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
	return Def{Kind: zero.Kind(), Opts: opts, newArgs: func() Args { return any(new(A)).(Args) }, fields: jsonFields(reflect.TypeFor[A]())}
}

// jsonFields returns the JSON names of struct type t's exported fields.
func jsonFields(t reflect.Type) map[string]bool {
	out := map[string]bool{}
	for _, f := range reflect.VisibleFields(t) {
		if !f.IsExported() || f.Anonymous {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = f.Name
		}
		out[name] = true
	}
	return out
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

// Decode parses and validates a JSON payload of kind. Unknown fields
// (names match exactly, case included), repeated fields, trailing data and
// invalid values are errors that name the field (*FieldError); the caller
// archives such a task instead of retrying it.
func (c *Catalog) Decode(kind string, payload []byte) (Args, error) {
	d, ok := c.defs[kind]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownKind, shorten(kind, 128))
	}
	return d.Decode(payload)
}

// Decode parses and validates a JSON payload of this type.
func (d Def) Decode(payload []byte) (Args, error) {
	if len(payload) > MaxPayloadBytes {
		return nil, fmt.Errorf("%s: %w (%d bytes, limit %d)", d.Kind, ErrPayloadTooLarge, len(payload), MaxPayloadBytes)
	}
	a := d.newArgs()
	// Only JSON's own whitespace makes an empty payload: "\v" or a
	// non-breaking space is not JSON.
	if len(bytes.Trim(payload, jsonSpace)) == 0 {
		payload = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(a); err != nil {
		err = jsonFieldError(err)
		if fe, ok := err.(*FieldError); ok && fe.Field == "(body)" {
			// A field's own decoder failed (a bad time): name the field.
			if named := d.fieldDecodeError(payload); named != nil {
				return nil, named
			}
		}
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, &FieldError{Field: "(body)", Reason: "unexpected data after the JSON object"}
	}
	if err := d.checkKeys(payload); err != nil {
		return nil, err
	}
	if v, ok := a.(Validator); ok {
		if err := v.Validate(); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// DecodeObject decodes body, one JSON object, into v (a pointer to a
// struct) by the rules task payloads follow: its keys must be v's JSON
// field names exactly (case included), each at most once, with nothing
// after the object. Errors are *FieldError naming the key, or "(body)".
// The HTTP API's other bodies (strikes, exports) use it, so that
// {"type":"a","type":"b"} or {"Type":…} is refused, not read as json would.
func DecodeObject(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonFieldError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return &FieldError{Field: "(body)", Reason: "unexpected data after the JSON object"}
	}
	fields := jsonFields(reflect.TypeOf(v).Elem())
	var buf [8][]byte
	keys, err := topKeys(body, buf[:0])
	if err != nil {
		return err
	}
	for i, k := range keys {
		if !fields[string(k)] {
			return &FieldError{Field: keyName(string(k)), Reason: "unknown field (names are case-sensitive)"}
		}
		for _, prev := range keys[:i] {
			if bytes.Equal(prev, k) {
				return &FieldError{Field: keyName(string(k)), Reason: "given more than once"}
			}
		}
	}
	return nil
}

// checkKeys refuses top-level keys encoding/json accepted but the
// declaration does not name exactly ("TRACK_ID" for track_id) and keys
// given twice (json keeps the last). Either would make the raw payload say
// something else than the args the handler runs with: a strike matches the
// raw payload's exact top-level fields. payload is one valid JSON value
// (the decoder took it whole); the scan allocates only for escaped keys.
func (d Def) checkKeys(payload []byte) error {
	var buf [16][]byte
	keys, err := topKeys(payload, buf[:0])
	if err != nil {
		return err
	}
	for i, k := range keys {
		if !d.fields[string(k)] {
			return &FieldError{Field: keyName(string(k)), Reason: "unknown field (names are case-sensitive: " + d.fieldList() + ")"}
		}
		for _, prev := range keys[:i] {
			if bytes.Equal(prev, k) {
				return &FieldError{Field: keyName(string(k)), Reason: "given more than once"}
			}
		}
	}
	return nil
}

// topKeys appends the top-level keys of valid JSON object b (none when b
// is not an object), unescaped, to keys. They alias b unless escaped.
func topKeys(b []byte, keys [][]byte) ([][]byte, error) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return keys, nil
	}
	i++
	for {
		i = skipSpace(b, i)
		if i >= len(b) || b[i] == '}' {
			return keys, nil
		}
		if b[i] == ',' {
			i = skipSpace(b, i+1)
		}
		end := skipString(b, i)
		key := b[i+1 : end-1]
		if bytes.IndexByte(key, '\\') >= 0 {
			var s string
			if err := json.Unmarshal(b[i:end], &s); err != nil {
				return keys, &FieldError{Field: "(body)", Reason: "invalid key"}
			}
			key = []byte(s)
		}
		keys = append(keys, key)
		i = skipSpace(b, end)
		i = skipValue(b, skipSpace(b, i+1)) // past ':' and the value
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string starting at b[i] ('"').
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(b)
}

// skipValue returns the index after the value starting at b[i].
func skipValue(b []byte, i int) int {
	depth := 0
	for i < len(b) {
		switch b[i] {
		case '"':
			i = skipString(b, i)
			if depth == 0 {
				return i
			}
			continue
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return i // the enclosing object's end
			}
			depth--
			if depth == 0 {
				return i + 1
			}
		case ',':
			if depth == 0 {
				return i
			}
		}
		i++
	}
	return i
}

// keyName is how a field error names a JSON key: as is, `""` for the
// empty key (an error must name something), and cut at maxKeyName bytes:
// the error is an archived task's reason and a log line, not an echo of
// the payload.
func keyName(k string) string {
	if k == "" {
		return `""`
	}
	return shorten(k, maxKeyName)
}

const maxKeyName = 64

// shorten cuts s to at most n bytes on a rune boundary, marking the cut.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func (d Def) fieldList() string {
	names := make([]string, 0, len(d.fields))
	for n := range d.fields {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// fieldDecodeError finds the field whose value failed to decode when the
// decoder's error does not say (a field type's own UnmarshalJSON failed:
// time.Time's). It decodes each top-level member alone. Error path only.
func (d Def) fieldDecodeError(payload []byte) error {
	members, ok := topLevel(payload)
	if !ok {
		return nil
	}
	for i, m := range members {
		if !d.fields[m.key] {
			// encoding/json took it case-insensitively; it is unknown here.
			return &FieldError{Field: keyName(m.key), Reason: "unknown field (names are case-sensitive: " + d.fieldList() + ")"}
		}
		for _, prev := range members[:i] {
			if prev.key == m.key {
				return &FieldError{Field: keyName(m.key), Reason: "given more than once"}
			}
		}
		one, err := json.Marshal(map[string]json.RawMessage{m.key: m.value})
		if err != nil {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(one))
		dec.DisallowUnknownFields()
		err = dec.Decode(d.newArgs())
		if err == nil {
			continue
		}
		if fe, ok := jsonFieldError(err).(*FieldError); ok && fe.Field != "(body)" {
			return fe
		}
		var pe *time.ParseError
		if errors.As(err, &pe) || strings.Contains(err.Error(), "Time.UnmarshalJSON") {
			return &FieldError{Field: keyName(m.key), Reason: "must be an RFC 3339 time like 2026-01-02T15:04:05Z"}
		}
		return &FieldError{Field: keyName(m.key), Reason: "invalid value: " + shorten(err.Error(), 200)}
	}
	return nil
}

type member struct {
	key   string
	value json.RawMessage
}

// topLevel returns the members of a JSON object in order, duplicates
// included; ok is false when payload is not a well-formed object.
func topLevel(payload []byte) (members []member, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(payload))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, false
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, false
		}
		key, _ := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, false
		}
		members = append(members, member{key, v})
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, false // truncated
	}
	return members, true
}

// jsonSpace is the whitespace JSON allows between tokens.
const jsonSpace = " \t\r\n"

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
		if name, err := strconv.Unquote(f); err == nil {
			f = name // encoding/json quotes the key with %q
		}
		return &FieldError{Field: keyName(f), Reason: "unknown field"}
	}
	if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
		return &FieldError{Field: "(body)", Reason: "incomplete JSON"}
	}
	return &FieldError{Field: "(body)", Reason: msg}
}
