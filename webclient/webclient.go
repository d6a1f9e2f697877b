// Package webclient is caseroom's browser client: plain ES modules, a style
// sheet and two message catalogues (zh-CN, en), embedded into the binary and
// served by Handler. There is no build step; the files under static/ are what
// the browser runs.
package webclient

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed static
var embedded embed.FS

// asset is one embedded file, read once at start.
type asset struct {
	body  []byte
	etag  string // strong: the quoted hex SHA-256 of body
	ctype string
}

// Handler serves the embedded client: GET and HEAD of "/" (index.html) and of
// every file under static/, each with a strong ETag (its SHA-256) that answers
// If-None-Match with 304, Cache-Control no-cache (names are not content-hashed,
// so browsers revalidate), and the security headers of setSecurity. Anything
// else answers 404 (405 for other methods), as plain text. The client routes
// with the URL fragment, so no deep link needs index.html.
func Handler() http.Handler {
	sub, err := fs.Sub(embedded, "static")
	if err != nil {
		panic("webclient: " + err.Error()) // the embed pattern guarantees static/
	}
	assets := map[string]asset{}
	err = fs.WalkDir(sub, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(sub, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		assets["/"+p] = asset{body: b, etag: `"` + hex.EncodeToString(sum[:]) + `"`, ctype: contentType(p)}
		return nil
	})
	if err != nil {
		panic("webclient: " + err.Error())
	}
	assets["/"] = assets["/index.html"]
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setSecurity(w.Header(), r.Host)
		a, ok := assets[r.URL.Path]
		if !ok {
			http.Error(w, "404 page not found", http.StatusNotFound)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "405 method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Type", a.ctype)
		h.Set("ETag", a.etag)
		h.Set("Cache-Control", "no-cache")
		// ServeContent answers If-None-Match (304) and ranges from the ETag.
		http.ServeContent(w, r, path.Base(r.URL.Path), time.Time{}, bytes.NewReader(a.body))
	})
}

// contentType is the media type of an embedded file, by its extension; the few
// the client uses are spelled out so that the answer never depends on the
// host's MIME tables.
func contentType(name string) string {
	switch path.Ext(name) {
	case ".html":
		return "text/html; charset=utf-8"
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	case ".json":
		return "application/json"
	case ".png":
		return "image/png"
	case ".txt":
		return "text/plain; charset=utf-8"
	}
	if t := mime.TypeByExtension(path.Ext(name)); t != "" {
		return t
	}
	return "application/octet-stream"
}

// CSP returns the Content-Security-Policy the client's files are served with
// for a request to host: only this origin's scripts, styles, images and fonts,
// no inline script or style, no plugins, not framed, and connections to this
// origin over HTTP(S) and WebSocket. Trusted Types are required with no policy
// allowed, so the browser itself refuses any assignment of a string to an HTML
// sink (innerHTML and the like): user content can only ever become text.
func CSP(host string) string {
	connect := "'self'"
	if validHost(host) {
		connect += " ws://" + host + " wss://" + host
	}
	return strings.Join([]string{
		"default-src 'self'",
		"script-src 'self'",
		"style-src 'self'",
		"img-src 'self' blob: data:",
		"font-src 'self'",
		"connect-src " + connect,
		"media-src 'self' blob:",
		"object-src 'none'",
		"base-uri 'none'",
		"form-action 'self'",
		"frame-ancestors 'none'",
		"require-trusted-types-for 'script'",
		"trusted-types 'none'",
	}, "; ")
}

func setSecurity(h http.Header, host string) {
	h.Set("Content-Security-Policy", CSP(host))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=(), usb=()")
}

// validHost reports whether host (from the request) is a plain host[:port], so
// that it can go into a header without letting a client inject directives.
func validHost(host string) bool {
	if host == "" || len(host) > 255 {
		return false
	}
	for _, c := range host {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '.', c == '-', c == ':', c == '[', c == ']':
		default:
			return false
		}
	}
	return true
}
