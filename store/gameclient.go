package store

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Echo modes of Game.Echo.
const (
	EchoAuto      = "auto"
	EchoPassword  = "password"
	EchoCharacter = "character"
)

// VitalSpec is one gauge of a game's vitals mapping: where the page finds
// the current and the maximum value. Package is a GMCP package name
// (matched without regard to case) or "msdp"; Value and Max are key paths
// inside its body ("hp", "stats.hp") or, for MSDP, variable names. Max may
// live in another package (MaxPackage, default Package) or be a constant
// number ("100"), for games that send percentages.
type VitalSpec struct {
	Label      string `json:"label" yaml:"label"`
	Package    string `json:"package" yaml:"package"`
	Value      string `json:"value" yaml:"value"`
	Max        string `json:"max" yaml:"max"`
	MaxPackage string `json:"max_package,omitempty" yaml:"max_package,omitempty"`
	// Kind picks the colour: hp, mp, mv, wp or other (default: guessed
	// from Label).
	Kind string `json:"kind,omitempty" yaml:"kind,omitempty"`
}

// MaxVitals bounds Game.Vitals: a status bar has room for a handful.
const MaxVitals = 8

var (
	vitalPackagePattern = regexp.MustCompile(`^([A-Za-z][\w-]*(\.[\w-]+)+|msdp|MSDP)$`)
	vitalPathPattern    = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}(\.[A-Za-z0-9_-]{1,64}){0,3}$`)
	vitalNumberPattern  = regexp.MustCompile(`^[0-9]{1,9}$`)
	vitalLabelPattern   = regexp.MustCompile(`^[\p{L}\p{N} _.-]{1,16}$`)
)

// EchoMode is g.Echo with the default filled in.
func (g Game) EchoMode() string {
	if g.Echo == "" {
		return EchoAuto
	}
	return g.Echo
}

// validateClient checks the fields the player's client reads.
func (g Game) validateClient() []error {
	var errs []error
	switch g.Echo {
	case "", EchoAuto, EchoPassword, EchoCharacter:
	default:
		errs = append(errs, fmt.Errorf("echo %.40q: want auto, password or character", g.Echo))
	}
	if len(g.Vitals) > MaxVitals {
		errs = append(errs, fmt.Errorf("vitals: %d gauges, want at most %d", len(g.Vitals), MaxVitals))
		return errs
	}
	for i, v := range g.Vitals {
		if err := v.validate(); err != nil {
			errs = append(errs, fmt.Errorf("vitals entry %d: %w", i+1, err))
		}
	}
	return errs
}

func (v VitalSpec) validate() error {
	var errs []error
	if !vitalLabelPattern.MatchString(v.Label) || strings.TrimSpace(v.Label) == "" {
		errs = append(errs, fmt.Errorf("label %.40q: want 1-16 letters, digits, spaces, _ . -", v.Label))
	}
	if !vitalPackagePattern.MatchString(v.Package) || len(v.Package) > 64 {
		errs = append(errs, fmt.Errorf("package %.70q: want a GMCP package (Char.Vitals) or msdp", v.Package))
	}
	if v.MaxPackage != "" && (!vitalPackagePattern.MatchString(v.MaxPackage) || len(v.MaxPackage) > 64) {
		errs = append(errs, fmt.Errorf("max_package %.70q: want a GMCP package (Char.MaxStats) or msdp", v.MaxPackage))
	}
	if !vitalPathPattern.MatchString(v.Value) {
		errs = append(errs, fmt.Errorf("value %.70q: want a key path such as hp or stats.hp", v.Value))
	}
	if !vitalPathPattern.MatchString(v.Max) && !vitalNumberPattern.MatchString(v.Max) {
		errs = append(errs, fmt.Errorf("max %.70q: want a key path such as maxhp, or a number", v.Max))
	}
	switch v.Kind {
	case "", "hp", "mp", "mv", "wp", "other":
	default:
		errs = append(errs, fmt.Errorf("kind %.20q: want hp, mp, mv, wp or other", v.Kind))
	}
	return errors.Join(errs...)
}
