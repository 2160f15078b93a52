// Package configtest checks, in each component's tests, that a
// configuration struct's filler and envconfig agree on every default, so
// the default tag stays the one statement of it.
package configtest

import (
	"os"
	"reflect"
	"slices"
	"strconv"
	"testing"

	"github.com/kelseyhightower/envconfig"

	"github.com/trellis-mud/trellis/internal/config"
)

// Unset unsets each variable for the rest of the test (t.Setenv restores
// it afterwards). envconfig tells an empty variable from an unset one, so
// setting "" is not enough.
func Unset(t testing.TB, keys ...string) {
	t.Helper()
	for _, k := range keys {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
}

// EmptyEnv unsets every variable envconfig.Process(prefix, spec) could
// read: the prefixed names and the bare envconfig tags it falls back to.
func EmptyEnv(t testing.TB, prefix string, spec any) {
	t.Helper()
	keys, err := config.Keys(prefix, spec)
	if err != nil {
		t.Fatalf("config.Keys(%s): %v", prefix, err)
	}
	for _, k := range keys {
		Unset(t, k)
	}
	st := reflect.TypeOf(spec).Elem()
	for i := range st.NumField() {
		if alt := st.Field(i).Tag.Get("envconfig"); alt != "" {
			Unset(t, alt)
		}
	}
}

// Defaults checks that fill, given a zero T, gives what envconfig.Process
// gives on an empty environment: every field equal, except that fields
// tagged keepzero must stay zero, and the fields named in except (filled by
// code, such as a host name) are not compared.
func Defaults[T any](t *testing.T, prefix string, fill func(*T), except ...string) {
	t.Helper()
	EmptyEnv(t, prefix, new(T))
	lib, ours := new(T), new(T)
	if err := envconfig.Process(prefix, lib); err != nil {
		t.Fatalf("envconfig.Process(%s) on an empty environment: %v", prefix, err)
	}
	fill(ours)
	lv, ov := reflect.ValueOf(lib).Elem(), reflect.ValueOf(ours).Elem()
	st := lv.Type()
	compared := 0
	for i := range st.NumField() {
		f := st.Field(i)
		if !f.IsExported() || isTrue(f.Tag.Get("ignored")) || slices.Contains(except, f.Name) {
			continue
		}
		if isTrue(f.Tag.Get(config.KeepZeroTag)) {
			if !ov.Field(i).IsZero() {
				t.Errorf("%s.%s is keepzero, yet filled with %v", st, f.Name, ov.Field(i))
			}
			continue
		}
		compared++
		if !reflect.DeepEqual(lv.Field(i).Interface(), ov.Field(i).Interface()) {
			t.Errorf("%s.%s: the filler gives %#v, envconfig (tag %q) %#v", st, f.Name, ov.Field(i), f.Tag.Get("default"), lv.Field(i))
		}
	}
	if compared == 0 {
		t.Errorf("%s: no field compared", st)
	}
}

func isTrue(s string) bool {
	b, _ := strconv.ParseBool(s)
	return b
}
