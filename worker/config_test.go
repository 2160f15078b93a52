package worker

import (
	"testing"

	"github.com/trellis-mud/trellis/internal/config/configtest"
)

// SetDefaults gives a Config literal exactly what an empty environment
// gives, but for Name (the host name) and the keepzero AdminListen: the
// default tags are the only statement of the defaults.
func TestSetDefaultsMatchesTheEnvironment(t *testing.T) {
	configtest.Defaults(t, "TRELLIS_WORKER", (*Config).SetDefaults, "Name")
	if d := Defaults(); d.AdminListen != "" || d.Name != "" || d.LeaseTTL == 0 {
		t.Errorf("Defaults() = %+v: want the tags, with Name and AdminListen empty", d)
	}
}
