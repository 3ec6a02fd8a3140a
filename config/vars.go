package config

import (
	"embed"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"net/url"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/caarlos0/env/v10"
	"github.com/plyr-fm/plyrtasks/redisconn"
)

// envVar is one variable as the struct declares it.
type envVar struct {
	Key        string
	Field      string // Go field name (what caarlos0's ParseError names)
	Type       reflect.Type
	Owner      reflect.Type // struct type declaring the field
	Default    string
	HasDefault bool
	SecretTag  string // secret:"true" or secret:"url"
	Index      []int
}

// describe lists every env-tagged field of t, recursing into nested structs
// the way caarlos0/env does (envPrefix included).
func describe(t reflect.Type) []envVar {
	var out []envVar
	var walk func(t reflect.Type, prefix string, index []int)
	walk = func(t reflect.Type, prefix string, index []int) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			idx := append(append([]int{}, index...), i)
			key, _, _ := strings.Cut(f.Tag.Get("env"), ",")
			if key != "" {
				def, has := f.Tag.Lookup("envDefault")
				out = append(out, envVar{
					Key: prefix + key, Field: f.Name, Type: f.Type, Owner: t,
					Default: def, HasDefault: has, SecretTag: f.Tag.Get("secret"), Index: idx,
				})
				continue
			}
			if f.Type.Kind() == reflect.Struct {
				walk(f.Type, prefix+f.Tag.Get("envPrefix"), idx)
			}
		}
	}
	walk(t, "", nil)
	return out
}

// secret reports whether the variable's value must never be printed whole.
func (v envVar) secret() bool {
	if v.SecretTag == "true" {
		return true
	}
	k := strings.ToUpper(v.Key)
	for _, w := range []string{"PASSWORD", "TOKEN", "SECRET", "PRIVATE"} {
		if strings.Contains(k, w) {
			return true
		}
	}
	return strings.HasSuffix(k, "_KEY") || strings.Contains(k, "_KEY_")
}

// urlLike reports whether the value may be a URL with a password in it.
func (v envVar) urlLike() bool {
	return v.SecretTag == "url" || strings.HasSuffix(strings.ToUpper(v.Key), "_URL")
}

// explain turns one caarlos0/env error into a message naming the variable.
func explain(e error, vars []envVar, environ map[string]string) (name, msg string) {
	var pe env.ParseError
	if !errors.As(e, &pe) {
		var notSet env.EnvVarIsNotSetError
		var empty env.EmptyEnvVarError
		var file env.LoadFileContentError
		switch {
		case errors.As(e, &notSet):
			return notSet.Key, fmt.Sprintf("%s is required but not set", notSet.Key)
		case errors.As(e, &empty):
			return empty.Key, fmt.Sprintf("%s is set but empty", empty.Key)
		case errors.As(e, &file):
			return file.Key, fmt.Sprintf("%s: cannot read file %q: %v", file.Key, file.Filename, file.Err)
		}
		return "", "config: " + e.Error()
	}
	var cands []envVar
	for _, v := range vars {
		if v.Field == pe.Name && v.Type == pe.Type {
			cands = append(cands, v)
		}
	}
	if len(cands) > 1 { // same Go name in two structs: keep the ones set
		var set []envVar
		for _, v := range cands {
			if environ[v.Key] != "" {
				set = append(set, v)
			}
		}
		if len(set) > 0 {
			cands = set
		}
	}
	if len(cands) == 0 {
		return "", fmt.Sprintf("config: field %s: %v", pe.Name, pe.Err)
	}
	keys := make([]string, len(cands))
	for i, v := range cands {
		keys[i] = v.Key
	}
	key := strings.Join(keys, " or ")
	reason := parseReason(pe.Type, pe.Err)
	if len(cands) == 1 && !cands[0].secret() {
		return key, fmt.Sprintf("%s=%q: %s", key, environ[key], reason)
	}
	return cands[0].Key, fmt.Sprintf("%s: %s", key, reason)
}

func parseReason(t reflect.Type, err error) string {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == reflect.TypeOf(time.Duration(0)) {
		return "not a duration (write a number with a unit: 500ms, 2s, 1m)"
	}
	var ne *strconv.NumError
	tooBig := errors.As(err, &ne) && errors.Is(ne.Err, strconv.ErrRange)
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if tooBig {
			return "out of range for an integer"
		}
		return "not an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if tooBig {
			return "out of range for an integer"
		}
		return "not a non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "not a number"
	case reflect.Bool:
		return "not a boolean (true or false)"
	}
	return err.Error()
}

// Redacted returns every variable's effective value (defaults applied) for
// a debug print: secrets appear as "set" or "unset", passwords inside URLs
// as xxxxx, empty values as "unset".
func (c *Config) Redacted() map[string]string {
	out := map[string]string{}
	rv := reflect.ValueOf(c).Elem()
	for _, v := range describe(rv.Type()) {
		fv := rv.FieldByIndex(v.Index)
		s := formatValue(fv)
		switch {
		case v.secret():
			if fv.IsZero() {
				s = "unset"
			} else {
				s = "set"
			}
		case s == "":
			s = "unset"
		case v.urlLike():
			s = redactURL(v.Key, s)
		}
		out[v.Key] = s
	}
	return out
}

func formatValue(v reflect.Value) string {
	if d, ok := v.Interface().(time.Duration); ok {
		return d.String()
	}
	if s, ok := v.Interface().(fmt.Stringer); ok {
		return s.String()
	}
	if v.Kind() == reflect.String {
		return v.String()
	}
	if list, ok := v.Interface().([]string); ok {
		// The variable's own syntax (comma-separated), so the printed
		// value can be set again; empty reads "unset" like the others.
		return strings.Join(list, ",")
	}
	return fmt.Sprint(v.Interface())
}

func redactURL(key, s string) string {
	if key == "REDIS_URL" {
		if spec, err := redisconn.Parse(s); err == nil {
			return spec.String()
		}
		return "set (not a valid REDIS_URL)"
	}
	u, err := url.Parse(s)
	if err != nil {
		return "set (not a valid URL)"
	}
	return u.Redacted()
}

// Variable documents one environment variable, from its field's doc comment.
type Variable struct {
	Name string
	// Default is the text after "Default:" in the doc comment, or the
	// envDefault tag, or "unset".
	Default string
	// Doc is the doc comment without the leading "NAME:" and the Default
	// sentence.
	Doc    string
	Secret bool
}

//go:embed config.go atproto.go storage.go moderation.go worker.go
var sources embed.FS

// Variables lists every variable the configuration reads, in declaration
// order, documented from the field comments in this package's sources. It
// is what the README's configuration table is generated from.
func Variables() []Variable {
	docs := fieldDocs()
	var out []Variable
	for _, v := range describe(reflect.TypeOf(Config{})) {
		doc := docs[v.Owner.Name()+"."+v.Field]
		doc = strings.TrimSpace(strings.TrimPrefix(doc, v.Key+":"))
		def := ""
		if i := strings.LastIndex(doc, "Default:"); i >= 0 {
			def = strings.TrimSuffix(strings.TrimSpace(doc[i+len("Default:"):]), ".")
			doc = strings.TrimSpace(doc[:i])
		} else if v.HasDefault {
			def = v.Default
		} else {
			def = "unset"
		}
		out = append(out, Variable{Name: v.Key, Default: def, Doc: doc, Secret: v.secret()})
	}
	return out
}

// fieldDocs maps "Type.Field" to the field's doc comment, joined into one line.
func fieldDocs() map[string]string {
	docs := map[string]string{}
	fset := token.NewFileSet()
	entries, _ := sources.ReadDir(".")
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	for _, name := range names {
		src, err := sources.ReadFile(name)
		if err != nil {
			continue
		}
		f, err := parser.ParseFile(fset, name, src, parser.ParseComments)
		if err != nil {
			continue
		}
		ast.Inspect(f, func(n ast.Node) bool {
			ts, ok := n.(*ast.TypeSpec)
			if !ok {
				return true
			}
			st, ok := ts.Type.(*ast.StructType)
			if !ok {
				return false
			}
			for _, fld := range st.Fields.List {
				if fld.Doc == nil {
					continue
				}
				text := strings.Join(strings.Fields(fld.Doc.Text()), " ")
				for _, id := range fld.Names {
					docs[ts.Name.Name+"."+id.Name] = text
				}
			}
			return false
		})
	}
	return docs
}

// MarkdownTable renders Variables as the README's configuration table.
func MarkdownTable() string {
	var b strings.Builder
	b.WriteString("| Variable | Default | Description |\n|---|---|---|\n")
	esc := strings.NewReplacer("|", `\|`, "\n", " ")
	for _, v := range Variables() {
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", v.Name, esc.Replace(v.Default), esc.Replace(v.Doc))
	}
	return b.String()
}
