package config

import (
	"errors"
	"net/netip"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kelseyhightower/envconfig"
)

// every kind of field envconfig decodes, with a default.
type fixture struct {
	Str      string            `default:"x y"`
	Int      int               `default:"0x10"`
	Int8     int8              `default:"-7"`
	Int64    int64             `default:"1048576"`
	Uint     uint              `default:"3"`
	Bool     bool              `default:"true"`
	Float    float64           `default:"2.5"`
	Dur      time.Duration     `default:"1m30s"`
	List     []string          `default:"a,b,c"`
	Nums     []int             `default:"1,2"`
	Map      map[string]int    `default:"a:1,b:2"`
	Addr     netip.Addr        `default:"127.0.0.1"`
	Ptr      *int              `default:"9"`
	Bytes    []byte            `default:"raw"`
	Renamed  string            `envconfig:"FLAVOUR" default:"plain"`
	Split    string            `split_words:"true" default:"split"`
	NoDef    string            // no default: stays zero
	Kept     int               `keepzero:"true" default:"5"`
	Skipped  string            `ignored:"true" default:"no"`
	Required string            `required:"true"`
	Labels   map[string]string `default:""`
	hidden   string            //nolint:unused // unexported: envconfig reads nothing
}

func unsetEnv(t *testing.T, keys ...string) {
	t.Helper()
	for _, k := range keys {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
}

// The filler and envconfig agree on every default, so the tag is the one
// statement of a default; keepzero fields alone differ.
func TestSetDefaultsMatchesEnvconfig(t *testing.T) {
	keys, err := Keys("CFGTEST", &fixture{})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		unsetEnv(t, k)
	}
	unsetEnv(t, "FLAVOUR")
	t.Setenv("CFGTEST_REQUIRED", "r")

	var lib fixture
	if err := envconfig.Process("CFGTEST", &lib); err != nil {
		t.Fatal(err)
	}
	var ours fixture
	SetDefaults(&ours)
	if ours.Kept != 0 {
		t.Errorf("keepzero field filled: %d", ours.Kept)
	}
	if lib.Kept != 5 {
		t.Errorf("envconfig gave the keepzero field %d: the environment must still get the default", lib.Kept)
	}
	ours.Kept, ours.Required = lib.Kept, lib.Required
	if !reflect.DeepEqual(ours, lib) {
		t.Errorf("SetDefaults:\n  %+v\nenvconfig.Process:\n  %+v", ours, lib)
	}
}

func TestSetDefaultsKeepsSetFields(t *testing.T) {
	c := fixture{Str: "mine", Dur: time.Second, List: []string{"z"}}
	SetDefaults(&c)
	if c.Str != "mine" || c.Dur != time.Second || !reflect.DeepEqual(c.List, []string{"z"}) || c.Int != 16 {
		t.Errorf("got %+v", c)
	}
}

func TestSetDefaultsPanicsOnABadTag(t *testing.T) {
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), "Dur") {
			t.Errorf("recovered %v: want a panic naming the field", r)
		}
	}()
	var c struct {
		Dur time.Duration `default:"soon"`
	}
	SetDefaults(&c)
}

// envconfig reads the bare tag name when the prefixed one is unset;
// Process does not.
func TestProcessIgnoresTheBareName(t *testing.T) {
	unsetEnv(t, "CFGTEST_FLAVOUR")
	t.Setenv("FLAVOUR", "stray")
	t.Setenv("CFGTEST_REQUIRED", "r")

	var lib fixture
	if err := envconfig.Process("CFGTEST", &lib); err != nil {
		t.Fatal(err)
	}
	if lib.Renamed != "stray" {
		t.Fatalf("envconfig read %q: the fixture no longer shows the fallback", lib.Renamed)
	}
	var ours fixture
	if err := Process("CFGTEST", &ours); err != nil {
		t.Fatal(err)
	}
	if ours.Renamed != "plain" {
		t.Errorf("Process read FLAVOUR: got %q, want the default", ours.Renamed)
	}
	t.Setenv("CFGTEST_FLAVOUR", "prefixed")
	if err := Process("CFGTEST", &ours); err != nil || ours.Renamed != "prefixed" {
		t.Errorf("Process with CFGTEST_FLAVOUR set: %q, %v", ours.Renamed, err)
	}
}

// With prefixed names set, Process is envconfig.Process: same values,
// same errors.
func TestProcessMatchesEnvconfig(t *testing.T) {
	unsetEnv(t, "FLAVOUR")
	for k, v := range map[string]string{
		"CFGTEST_STR": "s", "CFGTEST_INT": "0o17", "CFGTEST_DUR": "2h", "CFGTEST_LIST": "x,,y",
		"CFGTEST_MAP": "k:3", "CFGTEST_ADDR": "::1", "CFGTEST_FLAVOUR": "f", "CFGTEST_SPLIT": "s2",
		"CFGTEST_NODEF": "n", "CFGTEST_KEPT": "0", "CFGTEST_REQUIRED": "r", "CFGTEST_SKIPPED": "set",
		"CFGTEST_BOOL": "0", "CFGTEST_PTR": "4",
	} {
		t.Setenv(k, v)
	}
	var lib, ours fixture
	lib.hidden, ours.hidden = "h", "h"
	if err := envconfig.Process("CFGTEST", &lib); err != nil {
		t.Fatal(err)
	}
	if err := Process("CFGTEST", &ours); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(ours, lib) {
		t.Errorf("Process:\n  %+v\nenvconfig.Process:\n  %+v", ours, lib)
	}

	t.Setenv("CFGTEST_DUR", "soon")
	errLib := envconfig.Process("CFGTEST", &fixture{})
	errOurs := Process("CFGTEST", &fixture{})
	var pl, po *envconfig.ParseError
	if !errors.As(errLib, &pl) || !errors.As(errOurs, &po) ||
		errOurs.Error() != errLib.Error() || pl.KeyName != po.KeyName || pl.FieldName != po.FieldName {
		t.Errorf("bad duration: Process says %#v, envconfig %#v", errOurs, errLib)
	}

	t.Setenv("CFGTEST_DUR", "1s")
	unsetEnv(t, "CFGTEST_REQUIRED", "REQUIRED")
	errLib = envconfig.Process("CFGTEST", &fixture{})
	errOurs = Process("CFGTEST", &fixture{})
	if errOurs == nil || errLib == nil || errOurs.Error() != errLib.Error() {
		t.Errorf("required missing: Process says %v, envconfig %v", errOurs, errLib)
	}
}

func TestProcessRefusesNestedStructs(t *testing.T) {
	var c struct {
		Inner struct{ A string }
	}
	if err := Process("CFGTEST", &c); err == nil {
		t.Error("nested struct accepted")
	}
	var odd struct {
		A string `envconfig:"my-var"`
	}
	if err := Process("CFGTEST", &odd); err == nil {
		t.Error("a variable name that is no Go identifier: no error")
	}
	if err := Process("CFGTEST", c); !errors.Is(err, envconfig.ErrInvalidSpecification) {
		t.Errorf("non-pointer: %v", err)
	}
}
