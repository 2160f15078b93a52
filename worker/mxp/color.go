package mxp

import (
	"strconv"
	"strings"
)

// parseColor reads an MXP colour: #rrggbb or an HTML colour name.
func parseColor(s string) (rgb, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	if strings.HasPrefix(s, "#") && len(s) == 7 {
		v, err := strconv.ParseUint(s[1:], 16, 32)
		if err != nil {
			return rgb{}, false
		}
		return rgb{uint8(v >> 16), uint8(v >> 8), uint8(v)}, true
	}
	v, ok := colorNames[s]
	if !ok {
		return rgb{}, false
	}
	return rgb{uint8(v >> 16), uint8(v >> 8), uint8(v)}, true
}

// colorNames are the HTML colour names MXP games use: the sixteen basic
// ones and the common extended ones.
var colorNames = map[string]uint32{
	"black": 0x000000, "silver": 0xc0c0c0, "gray": 0x808080, "grey": 0x808080,
	"white": 0xffffff, "maroon": 0x800000, "red": 0xff0000, "purple": 0x800080,
	"fuchsia": 0xff00ff, "magenta": 0xff00ff, "green": 0x008000, "lime": 0x00ff00,
	"olive": 0x808000, "yellow": 0xffff00, "navy": 0x000080, "blue": 0x0000ff,
	"teal": 0x008080, "aqua": 0x00ffff, "cyan": 0x00ffff,
	"orange": 0xffa500, "gold": 0xffd700, "pink": 0xffc0cb, "brown": 0xa52a2a,
	"violet": 0xee82ee, "indigo": 0x4b0082, "tan": 0xd2b48c, "khaki": 0xf0e68c,
	"salmon": 0xfa8072, "coral": 0xff7f50, "crimson": 0xdc143c, "orchid": 0xda70d6,
	"plum": 0xdda0dd, "beige": 0xf5f5dc, "ivory": 0xfffff0, "lavender": 0xe6e6fa,
	"turquoise": 0x40e0d0, "chocolate": 0xd2691e, "tomato": 0xff6347,
	"darkred": 0x8b0000, "darkgreen": 0x006400, "darkblue": 0x00008b,
	"lightblue": 0xadd8e6, "lightgreen": 0x90ee90, "lightgray": 0xd3d3d3, "lightgrey": 0xd3d3d3,
	"darkgray": 0xa9a9a9, "darkgrey": 0xa9a9a9, "skyblue": 0x87ceeb, "forestgreen": 0x228b22,
	"firebrick": 0xb22222, "goldenrod": 0xdaa520, "seagreen": 0x2e8b57, "steelblue": 0x4682b4,
	"slategray": 0x708090, "royalblue": 0x4169e1, "limegreen": 0x32cd32, "orangered": 0xff4500,
	"darkorange": 0xff8c00, "deeppink": 0xff1493, "hotpink": 0xff69b4, "sienna": 0xa0522d,
}
