package strikes

import (
	"bytes"
	"encoding/json"
	"slices"
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
}

func index(all []Strike) rules {
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
		raw, ok := top[f]
		if !ok {
			continue
		}
		if st, ok := kr.byField[f][scalar(raw)]; ok {
			return st, true
		}
	}
	return Strike{}, false
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
	}
	return string(raw)
}
