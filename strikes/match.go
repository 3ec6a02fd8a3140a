package strikes

import (
	"bytes"
	"encoding/json"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/plyr-fm/plyrtasks/tasks"
)

// rules is an immutable index of strikes for matching. A Watcher swaps in
// a new one on every reload.
type rules map[string]*kindRules

// kindRules are the strikes of one kind.
type kindRules struct {
	// all is the whole-type strike, if any.
	all *Strike
	// byField maps a field to the struck values; fields are in key order
	// so that the strike reported when several match is stable.
	byField map[string]map[string]Strike
	fields  []string
	// zero is the text of a field's zero value when the canonical payload
	// always writes it (no omitempty, "timestamp_ms":0): a payload that
	// omits the field, or gives null, runs with that value.
	zero map[string]string
}

func index(all []Strike) rules {
	catalog := tasks.All()
	r := rules{}
	for _, st := range all {
		kr := r[st.Kind]
		if kr == nil {
			kr = &kindRules{}
			r[st.Kind] = kr
		}
		if st.Field == "" {
			st := st
			kr.all = &st
			continue
		}
		if kr.byField == nil {
			kr.byField = map[string]map[string]Strike{}
		}
		vals := kr.byField[st.Field]
		if vals == nil {
			vals = map[string]Strike{}
			kr.byField[st.Field] = vals
			kr.fields = append(kr.fields, st.Field)
			if z, ok := zeroText(catalog, st.Kind, st.Field); ok {
				if kr.zero == nil {
					kr.zero = map[string]string{}
				}
				kr.zero[st.Field] = z
			}
		}
		vals[st.Value] = st
	}
	for _, kr := range r {
		slices.Sort(kr.fields)
	}
	return r
}

// match reports the strike that blocks a task of kind with payload. Only a
// kind with argument strikes costs a decode of the payload's top level; a
// payload that is not a JSON object matches no argument strike (its run is
// archived as invalid anyway).
func (r rules) match(kind string, payload []byte) (Strike, bool) {
	kr := r[kind]
	if kr == nil {
		return Strike{}, false
	}
	if kr.all != nil {
		return *kr.all, true
	}
	var top map[string]json.RawMessage
	if json.Unmarshal(payload, &top) != nil {
		return Strike{}, false
	}
	for _, f := range kr.fields {
		v := scalar(top[f])
		if z, ok := kr.zero[f]; ok && isAbsent(top[f]) {
			v = z
		}
		if st, ok := kr.byField[f][v]; ok {
			return st, true
		}
	}
	return Strike{}, false
}

// isAbsent reports a member that is missing or null: the decoder leaves
// the field at its zero value.
func isAbsent(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) == 0 || string(raw) == "null"
}

// zeroText is how the canonical payload of kind spells field's zero value,
// when it always writes the field (ok false for omitempty fields, pointers
// and undeclared ones).
func zeroText(c *tasks.Catalog, kind, field string) (string, bool) {
	def, ok := c.Lookup(kind)
	if !ok {
		return "", false
	}
	t := reflect.TypeOf(def.NewArgs()).Elem()
	for _, f := range reflect.VisibleFields(t) {
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name != field || f.Anonymous || !f.IsExported() {
			continue
		}
		if strings.Contains(opts, "omitempty") || f.Type.Kind() == reflect.Pointer {
			return "", false
		}
		b, err := json.Marshal(reflect.Zero(f.Type).Interface())
		if err != nil {
			return "", false
		}
		return scalar(b), true
	}
	return "", false
}

// scalar is the text a rule's value is compared with: a JSON string's
// content, or the JSON text of a number or boolean. Objects, arrays and
// null give "" (which no valid rule has as value).
func scalar(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return ""
	}
	switch raw[0] {
	case '"':
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return ""
		}
		return s
	case '{', '[', 'n':
		return ""
	case '-':
		// "-0" is a valid JSON integer the decoder reads as 0, which
		// payloads then spell "0": compare integers by value.
		if n, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
			return strconv.FormatInt(n, 10)
		}
	}
	return string(raw)
}
