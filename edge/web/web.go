package web

import (
	"embed"
	"io/fs"
)

//go:embed static
var files embed.FS

// Static returns the client's files rooted at the static directory, so
// "app.js" names static/app.js. The edge mounts it under /static/.
func Static() fs.FS {
	sub, err := fs.Sub(files, "static")
	if err != nil {
		// fs.Sub fails only for an invalid path, and "static" is valid.
		panic("web: " + err.Error())
	}
	return sub
}
