package config

import (
	"encoding"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/kelseyhightower/envconfig"
)

// KeepZeroTag marks a field SetDefaults leaves alone: `keepzero:"true"`.
const KeepZeroTag = "keepzero"

// SetDefaults fills every zero field of the struct spec points to with its
// `default` tag, decoded as envconfig.Process decodes a variable (durations,
// numbers with base prefixes, strconv.ParseBool, comma-split slices, and
// the Decode/Set/UnmarshalText methods). Fields without a default tag, with
// keepzero:"true" or ignored:"true", and unexported ones, are left alone.
//
// A tag that does not decode is a programming error, caught by the
// component's defaults test: SetDefaults panics on it.
func SetDefaults(spec any) {
	v := reflect.ValueOf(spec)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		panic(fmt.Sprintf("config.SetDefaults: %T is not a pointer to a struct", spec))
	}
	v = v.Elem()
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		def := f.Tag.Get("default")
		if !f.IsExported() || def == "" || isTrue(f.Tag.Get("ignored")) || isTrue(f.Tag.Get(KeepZeroTag)) {
			continue
		}
		fv := v.Field(i)
		if !fv.IsZero() {
			continue
		}
		if err := decode(def, fv); err != nil {
			panic(fmt.Sprintf("config.SetDefaults: %s.%s: default %q: %v", t, f.Name, def, err))
		}
	}
}

// decode sets field from value as envconfig v1.4.0's processField does.
func decode(value string, field reflect.Value) error {
	if field.CanAddr() {
		switch p := field.Addr().Interface().(type) {
		case envconfig.Decoder:
			return p.Decode(value)
		case envconfig.Setter:
			return p.Set(value)
		case encoding.TextUnmarshaler:
			return p.UnmarshalText([]byte(value))
		case encoding.BinaryUnmarshaler:
			return p.UnmarshalBinary([]byte(value))
		}
	}
	typ := field.Type()
	if typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
		if field.IsNil() {
			field.Set(reflect.New(typ))
		}
		field = field.Elem()
	}
	switch typ.Kind() {
	case reflect.String:
		field.SetString(value)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		var n int64
		var err error
		if typ == reflect.TypeFor[time.Duration]() {
			var d time.Duration
			d, err = time.ParseDuration(value)
			n = int64(d)
		} else {
			n, err = strconv.ParseInt(value, 0, typ.Bits())
		}
		if err != nil {
			return err
		}
		field.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(value, 0, typ.Bits())
		if err != nil {
			return err
		}
		field.SetUint(n)
	case reflect.Bool:
		b, err := strconv.ParseBool(value)
		if err != nil {
			return err
		}
		field.SetBool(b)
	case reflect.Float32, reflect.Float64:
		x, err := strconv.ParseFloat(value, typ.Bits())
		if err != nil {
			return err
		}
		field.SetFloat(x)
	case reflect.Slice:
		sl := reflect.MakeSlice(typ, 0, 0)
		if typ.Elem().Kind() == reflect.Uint8 {
			sl = reflect.ValueOf([]byte(value)).Convert(typ)
		} else if strings.TrimSpace(value) != "" {
			parts := strings.Split(value, ",")
			sl = reflect.MakeSlice(typ, len(parts), len(parts))
			for i, p := range parts {
				if err := decode(p, sl.Index(i)); err != nil {
					return err
				}
			}
		}
		field.Set(sl)
	case reflect.Map:
		m := reflect.MakeMap(typ)
		if strings.TrimSpace(value) != "" {
			for _, pair := range strings.Split(value, ",") {
				kv := strings.Split(pair, ":")
				if len(kv) != 2 {
					return fmt.Errorf("invalid map item: %q", pair)
				}
				k, e := reflect.New(typ.Key()).Elem(), reflect.New(typ.Elem()).Elem()
				if err := decode(kv[0], k); err != nil {
					return err
				}
				if err := decode(kv[1], e); err != nil {
					return err
				}
				m.SetMapIndex(k, e)
			}
		}
		field.Set(m)
	default:
		return fmt.Errorf("envconfig does not decode %s", typ)
	}
	return nil
}

// isTrue is envconfig's reading of a boolean tag.
func isTrue(s string) bool {
	b, _ := strconv.ParseBool(s)
	return b
}

// Process is envconfig.Process(prefix, spec) reading only the prefixed
// variable names: a field tagged `envconfig:"URL"` reads TRELLIS_REDIS_URL
// and never URL. Names, defaults, required fields, decoding and errors are
// envconfig's own: the struct is copied into one whose field names are the
// full variable names (envconfig's key with an empty prefix is the
// upper-cased field name), which envconfig processes, and copied back.
// Nested structs are not supported (no Trellis configuration has one).
func Process(prefix string, spec any) (err error) {
	v := reflect.ValueOf(spec)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return envconfig.ErrInvalidSpecification
	}
	v = v.Elem()
	keys, err := Keys(prefix, spec)
	if err != nil {
		return err
	}
	t := v.Type()
	var fields []reflect.StructField
	var index []int // index[j]: the field of spec behind field j of the copy
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() || isTrue(f.Tag.Get("ignored")) {
			continue // envconfig reads nothing
		}
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct && !decodesItself(ft) {
			return fmt.Errorf("config.Process: %s.%s: nested structs are not supported", t, f.Name)
		}
		key, ok := keys[f.Name]
		if !ok {
			return fmt.Errorf("config.Process: %s.%s: envconfig names no variable for it", t, f.Name)
		}
		var tag []string
		for _, name := range []string{"default", "required", "desc"} {
			if val, ok := f.Tag.Lookup(name); ok {
				tag = append(tag, name+":"+strconv.Quote(val))
			}
		}
		fields = append(fields, reflect.StructField{Name: key, Type: f.Type, Tag: reflect.StructTag(strings.Join(tag, " "))})
		index = append(index, i)
	}
	defer func() {
		if r := recover(); r != nil { // a key that is not a Go identifier
			err = fmt.Errorf("config.Process: %s: %v", t, r)
		}
	}()
	tmp := reflect.New(reflect.StructOf(fields)).Elem()
	for j, i := range index {
		tmp.Field(j).Set(v.Field(i))
	}
	perr := envconfig.Process("", tmp.Addr().Interface())
	var pe *envconfig.ParseError
	if errors.As(perr, &pe) {
		for j, i := range index {
			if fields[j].Name == pe.FieldName {
				pe.FieldName = t.Field(i).Name
			}
		}
	}
	for j, i := range index {
		v.Field(i).Set(tmp.Field(j))
	}
	return perr
}

// Keys maps each field of the struct spec points to that envconfig reads
// to its variable name, as envconfig itself names it.
func Keys(prefix string, spec any) (map[string]string, error) {
	t := reflect.TypeOf(spec)
	if t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		return nil, envconfig.ErrInvalidSpecification
	}
	// A fresh value: envconfig allocates nil struct pointers as it walks.
	var b strings.Builder
	if err := envconfig.Usagef(prefix, reflect.New(t.Elem()).Interface(), &b, "{{range .}}{{.Name}}={{usage_key .}}\n{{end}}"); err != nil {
		return nil, err
	}
	keys := make(map[string]string)
	for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if name, key, ok := strings.Cut(line, "="); ok {
			keys[name] = key
		}
	}
	return keys, nil
}

// decodesItself reports whether envconfig takes a struct of type t as one
// value rather than as a group of variables.
func decodesItself(t reflect.Type) bool {
	p := reflect.PointerTo(t)
	for _, it := range []reflect.Type{
		reflect.TypeFor[envconfig.Decoder](), reflect.TypeFor[envconfig.Setter](),
		reflect.TypeFor[encoding.TextUnmarshaler](), reflect.TypeFor[encoding.BinaryUnmarshaler](),
	} {
		if p.Implements(it) {
			return true
		}
	}
	return false
}
