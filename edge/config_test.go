package edge

import (
	"testing"

	"github.com/trellis-mud/trellis/internal/config/configtest"
)

// withDefaults gives a Config literal exactly what an empty environment
// gives, but for the keepzero fields (AdminListen, MaxSessionsPerUser,
// MaxConnections), whose zero means none or no limit.
func TestWithDefaultsMatchesTheEnvironment(t *testing.T) {
	configtest.Defaults(t, "TRELLIS_EDGE", func(c *Config) { *c = c.withDefaults() })
}
