package controller

import (
	"testing"
	"time"

	"github.com/trellis-mud/trellis/internal/config/configtest"
)

// The controller's Config is filled by the worker, not the environment, but
// its defaults are tags too, decoded as envconfig would.
func TestWithDefaultsMatchesTheTags(t *testing.T) {
	configtest.Defaults(t, "TRELLIS_CONTROLLER_TEST", func(c *Config) { *c = c.withDefaults() })
	c := Config{ClaimMinIdle: -time.Second, MaxDeliveries: -1, ReadCount: -1}.withDefaults()
	if c.ClaimMinIdle != 15*time.Second || c.MaxDeliveries != 5 || c.ReadCount != 32 {
		t.Errorf("negative values: %+v, want the defaults", c)
	}
}
