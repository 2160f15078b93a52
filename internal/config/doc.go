// Package config states each configuration default once, in the field's
// envconfig `default` tag, and reads the environment without envconfig's
// unprefixed fallback.
//
// Every component has one envconfig struct (prefix TRELLIS_...). Its
// defaults used to be written twice: as the tag, which the environment and
// `trellis help env` see, and as a Go constant that SetDefaults or
// withDefaults filled into a Config literal (tests, callers that skip the
// environment). Nothing checked that the two agreed. SetDefaults fills zero
// fields from the tags instead, decoding them the way envconfig.Process
// does, so the tag is the only statement; each component's test compares
// its filler with envconfig.Process on an emptied environment
// (configtest.Defaults), so the two cannot drift apart.
//
// A field whose zero value means something ("" = no admin listener, 0 = no
// limit) is tagged `keepzero:"true"`: SetDefaults leaves it alone, so a
// Config literal gets the zero meaning while the environment still gets the
// tag's default. grep keepzero finds them all.
//
// Process is envconfig.Process without the fallback to the bare name:
// envconfig reads `envconfig:"URL"` as TRELLIS_REDIS_URL and, when that is
// unset, as URL, so a stray URL or NAME in a container's environment would
// silently configure Trellis. Structs should not use the envconfig tag at
// all (split_words:"true" and a field name give the same variable names);
// Process makes the ones that still do safe.
package config
