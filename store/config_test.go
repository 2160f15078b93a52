package store

import (
	"testing"

	"github.com/trellis-mud/trellis/internal/config/configtest"
)

// SetDefaults gives a Config literal exactly what an empty environment
// gives: the default tags are the only statement of the defaults (and
// DefaultNamespace, which the key names need as a constant, agrees).
func TestSetDefaultsMatchesTheEnvironment(t *testing.T) {
	configtest.Defaults(t, "TRELLIS_REDIS", (*Config).SetDefaults)
	if d := DefaultConfig(); d.Namespace != DefaultNamespace || d.OutputMaxBytes == 0 || d.URL == "" {
		t.Errorf("DefaultConfig() = %+v: want the tags, namespace %q", d, DefaultNamespace)
	}
}
