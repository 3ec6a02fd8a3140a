package strikes

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/plyr-fm/plyrtasks/tasks"
)

// Rule says which tasks a strike blocks: every task of Kind, or, with
// Field set, those whose payload's top-level JSON field Field equals Value
// exactly (a string compared as is, case-sensitive; a number or boolean by
// its JSON text: track_id=42, flagged=true).
type Rule struct {
	Kind  string `json:"type"`
	Field string `json:"field,omitempty"`
	Value string `json:"value,omitempty"`
}

// Limits of a rule and a reason.
const (
	MaxKindLen   = 128
	MaxFieldLen  = 64
	MaxValueLen  = 512
	MaxReasonLen = 500
)

// ParseRule builds a rule from a task type and an optional "field=value"
// argument (the CLI's --arg, the API's arg), and validates it.
func ParseRule(kind, arg string) (Rule, error) {
	r := Rule{Kind: kind}
	if arg != "" {
		f, v, ok := strings.Cut(arg, "=")
		if !ok || f == "" && v == "" {
			// "=" alone would otherwise pass as a whole-type rule.
			return r, &tasks.FieldError{Field: "arg", Reason: fmt.Sprintf("must be field=value, got %q", arg)}
		}
		r.Field, r.Value = f, v
	}
	return r, r.Validate()
}

// Key is the rule's field in the strikes hash: "kind" or
// "kind|field=value".
func (r Rule) Key() string {
	if r.Field == "" {
		return r.Kind
	}
	return r.Kind + "|" + r.Field + "=" + r.Value
}

// Arg is "field=value", or "" for a whole-type rule.
func (r Rule) Arg() string {
	if r.Field == "" {
		return ""
	}
	return r.Field + "=" + r.Value
}

func (r Rule) String() string { return r.Key() }

// ParseKey is the inverse of Key.
func ParseKey(key string) (Rule, error) {
	kind, arg, _ := strings.Cut(key, "|")
	if strings.Contains(key, "|") && arg == "" {
		return Rule{Kind: kind}, &tasks.FieldError{Field: "arg", Reason: "is empty after |"}
	}
	return ParseRule(kind, arg)
}

// Validate checks the rule's shape; errors are *tasks.FieldError naming
// "type" or "arg".
func (r Rule) Validate() error {
	var errs []error
	switch {
	case r.Kind == "":
		errs = append(errs, &tasks.FieldError{Field: "type", Reason: "is required"})
	case len(r.Kind) > MaxKindLen:
		errs = append(errs, &tasks.FieldError{Field: "type", Reason: fmt.Sprintf("must be at most %d characters", MaxKindLen)})
	case !utf8.ValidString(r.Kind) || strings.ContainsFunc(r.Kind, func(c rune) bool { return c == '|' || unicode.IsSpace(c) || !unicode.IsPrint(c) }):
		errs = append(errs, &tasks.FieldError{Field: "type", Reason: "must be UTF-8 without |, spaces or control characters"})
	}
	if r.Field != "" || r.Value != "" {
		switch {
		case r.Field == "" || len(r.Field) > MaxFieldLen || strings.ContainsFunc(r.Field, notFieldChar):
			errs = append(errs, &tasks.FieldError{Field: "arg", Reason: fmt.Sprintf("field must be 1 to %d of a-z, A-Z, 0-9 and _ (a top-level JSON field of the payload)", MaxFieldLen)})
		case r.Value == "":
			errs = append(errs, &tasks.FieldError{Field: "arg", Reason: "value is required (field=value)"})
		case len(r.Value) > MaxValueLen:
			errs = append(errs, &tasks.FieldError{Field: "arg", Reason: fmt.Sprintf("value must be at most %d characters", MaxValueLen)})
		case strings.ContainsFunc(r.Value, unicode.IsControl):
			errs = append(errs, &tasks.FieldError{Field: "arg", Reason: "value must not contain control characters"})
		case !utf8.ValidString(r.Value):
			// A payload's strings are UTF-8 once decoded: this never matches.
			errs = append(errs, &tasks.FieldError{Field: "arg", Reason: "value must be UTF-8"})
		}
	}
	return errors.Join(errs...)
}

func notFieldChar(c rune) bool {
	return !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9')
}

// ValidateFor checks the rule against the declared task types: the kind
// must be declared, and the field must be a top-level JSON field of its
// arguments whose type the value fits (an integer field takes an integer).
// A typo would otherwise make a strike that never matches anything.
func (r Rule) ValidateFor(c *tasks.Catalog) error {
	if err := r.Validate(); err != nil {
		return err
	}
	def, ok := c.Lookup(r.Kind)
	if !ok {
		return &tasks.FieldError{Field: "type", Reason: fmt.Sprintf("unknown task type %q (known: %s)", r.Kind, strings.Join(c.Kinds(), ", "))}
	}
	if r.Field == "" {
		return nil
	}
	fields := jsonFields(def.NewArgs())
	typ, ok := fields[r.Field]
	if !ok {
		names := make([]string, 0, len(fields))
		for n := range fields {
			names = append(names, n)
		}
		slices.Sort(names)
		return &tasks.FieldError{Field: "arg", Reason: fmt.Sprintf("%s has no field %q (fields: %s)", r.Kind, r.Field, strings.Join(names, ", "))}
	}
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	// The value must be spelled as plyrtasks writes the field (strikes
	// compare text): "042", "+42" or a time with another offset spelling
	// would be accepted and never match.
	var canonical string
	var err error
	switch typ.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		var n int64
		n, err = strconv.ParseInt(r.Value, 10, 64)
		canonical = strconv.FormatInt(n, 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		var n uint64
		n, err = strconv.ParseUint(r.Value, 10, 64)
		canonical = strconv.FormatUint(n, 10)
	case reflect.Float32, reflect.Float64:
		var x float64
		x, err = strconv.ParseFloat(r.Value, 64)
		canonical = strconv.FormatFloat(x, 'g', -1, 64)
	case reflect.Bool:
		if r.Value != "true" && r.Value != "false" {
			err = errors.New("not a boolean")
		}
		canonical = r.Value
	case reflect.String:
		canonical = r.Value
	default:
		if typ != reflect.TypeFor[time.Time]() {
			return &tasks.FieldError{Field: "arg", Reason: fmt.Sprintf("%s.%s is a %s: only string, number and boolean fields can be matched", r.Kind, r.Field, typ.Kind())}
		}
		var tm time.Time
		tm, err = time.Parse(time.RFC3339Nano, r.Value)
		canonical = tm.Format(time.RFC3339Nano)
	}
	if err != nil {
		return &tasks.FieldError{Field: "arg", Reason: fmt.Sprintf("%s.%s is a %s: %q never matches", r.Kind, r.Field, typeName(typ), r.Value)}
	}
	if canonical != r.Value {
		return &tasks.FieldError{Field: "arg", Reason: fmt.Sprintf("%s.%s: %q never matches, payloads spell it %q", r.Kind, r.Field, r.Value, canonical)}
	}
	return nil
}

func typeName(t reflect.Type) string {
	if t == reflect.TypeFor[time.Time]() {
		return "time (RFC 3339)"
	}
	return t.Kind().String()
}

// jsonFields maps the JSON names of a struct's (or pointer to struct's)
// exported fields to their types, embedded structs flattened.
func jsonFields(v any) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	t := reflect.TypeOf(v)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return out
	}
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
		out[name] = f.Type
	}
	return out
}
