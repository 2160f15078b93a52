package demogame

import (
	"flag"
	"testing"
	"time"

	"github.com/trellis-mud/trellis/internal/config/configtest"
)

// The demo game's defaults are tags, decoded as envconfig would, and the
// flags default to the same values.
func TestDefaultsMatchTheTags(t *testing.T) {
	configtest.Defaults(t, "TRELLIS_DEMOGAME_TEST", func(c *Config) { *c = c.withDefaults() })

	var c Config
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	c.RegisterFlags(fs)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if d := Defaults(); c.Name != d.Name || c.NegotiationWait != d.NegotiationWait || c.WriteTimeout != d.WriteTimeout {
		t.Errorf("flag defaults %+v, Defaults() %+v", c, d)
	}
	if w := (Config{WriteTimeout: -time.Second}).withDefaults().WriteTimeout; w != Defaults().WriteTimeout {
		t.Errorf("negative WriteTimeout became %s, want the default", w)
	}
	if w := (Config{NegotiationWait: -1}).withDefaults().NegotiationWait; w != -1 {
		t.Errorf("negative NegotiationWait became %s: it means no wait", w)
	}
}
