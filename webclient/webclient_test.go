package webclient

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, method, path string, hdr map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, path, nil)
	r.Host = "caseroom.example:8080"
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestServesIndexWithSecurityHeaders(t *testing.T) {
	h := Handler()
	w := get(t, h, "GET", "/", nil)
	if w.Code != 200 {
		t.Fatalf("GET / = %d, want 200", w.Code)
	}
	if ct := w.Header().Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("Content-Type = %q", ct)
	}
	csp := w.Header().Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'self'", "script-src 'self'", "style-src 'self'",
		"connect-src 'self' ws://caseroom.example:8080 wss://caseroom.example:8080", "object-src 'none'",
		"frame-ancestors 'none'", "require-trusted-types-for 'script'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
		t.Errorf("CSP allows inline or eval: %q", csp)
	}
	for k, v := range map[string]string{"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"} {
		if got := w.Header().Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if !strings.Contains(w.Body.String(), `<script type="module" src="js/main.js">`) {
		t.Errorf("index.html does not load js/main.js")
	}
}

func TestStrongETagAnswers304(t *testing.T) {
	h := Handler()
	w := get(t, h, "GET", "/js/main.js", nil)
	etag := w.Header().Get("ETag")
	if w.Code != 200 || !regexp.MustCompile(`^"[0-9a-f]{64}"$`).MatchString(etag) {
		t.Fatalf("GET /js/main.js = %d, ETag %q; want 200 and a strong SHA-256 ETag", w.Code, etag)
	}
	if ct := w.Header().Get("Content-Type"); ct != "text/javascript; charset=utf-8" {
		t.Errorf("Content-Type = %q", ct)
	}
	w = get(t, h, "GET", "/js/main.js", map[string]string{"If-None-Match": etag})
	if w.Code != http.StatusNotModified || w.Body.Len() != 0 {
		t.Errorf("If-None-Match with the ETag = %d with %d bytes, want 304 and none", w.Code, w.Body.Len())
	}
	w = get(t, h, "GET", "/js/main.js", map[string]string{"If-None-Match": `"other"`})
	if w.Code != 200 {
		t.Errorf("If-None-Match with another ETag = %d, want 200", w.Code)
	}
	w = get(t, h, "HEAD", "/css/app.css", nil)
	if w.Code != 200 || w.Header().Get("ETag") == "" {
		t.Errorf("HEAD /css/app.css = %d, ETag %q", w.Code, w.Header().Get("ETag"))
	}
}

func TestUnknownPathsAndMethods(t *testing.T) {
	h := Handler()
	for _, p := range []string{"/nope", "/js/", "/../go.mod", "/static/index.html"} {
		if w := get(t, h, "GET", p, nil); w.Code != 404 {
			t.Errorf("GET %s = %d, want 404", p, w.Code)
		}
	}
	w := get(t, h, "POST", "/", nil)
	if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("POST / = %d (Allow %q), want 405 with Allow", w.Code, w.Header().Get("Allow"))
	}
	if w.Header().Get("Content-Security-Policy") == "" {
		t.Errorf("a 405 carries no CSP")
	}
}

func TestHostIsNotInjected(t *testing.T) {
	for _, host := range []string{"evil.example; script-src *", "a b", "x'y", ""} {
		csp := CSP(host)
		if strings.Contains(csp, "evil") || strings.Contains(csp, "ws://") {
			t.Errorf("CSP(%q) = %q: the host got in", host, csp)
		}
	}
}

// staticFiles returns every embedded file's path and text.
func staticFiles(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := fs.WalkDir(embedded, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(embedded, p)
		out[p] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestNoHTMLSinksNoInlineNoExternal keeps the client honest without a
// browser: no string reaches an HTML parser, nothing inline, nothing loaded
// from elsewhere.
func TestNoHTMLSinksNoInlineNoExternal(t *testing.T) {
	sinks := regexp.MustCompile(`\.innerHTML|\.outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function\(|createContextualFragment|DOMParser|srcdoc`)
	external := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}/|@import|url\(\s*['"]?https?:`)
	for p, text := range staticFiles(t) {
		if strings.HasSuffix(p, ".js") {
			if m := sinks.FindString(text); m != "" {
				t.Errorf("%s uses an HTML sink: %s", p, m)
			}
		}
		if strings.HasSuffix(p, ".html") {
			if regexp.MustCompile(`(?i)<script(?:\s[^>]*)?>\s*\S`).MatchString(text) && !strings.Contains(text, `<script type="module" src=`) {
				t.Errorf("%s has an inline script", p)
			}
			if regexp.MustCompile(`(?i)\sstyle=|<style|\son[a-z]+=`).MatchString(text) {
				t.Errorf("%s has an inline style or event handler", p)
			}
		}
		if !strings.HasSuffix(p, ".svg") {
			if m := external.FindString(text); m != "" {
				t.Errorf("%s refers to something outside: %q", p, m)
			}
		}
	}
}

var (
	keyLine = regexp.MustCompile(`(?m)^\s*'([a-zA-Z0-9_.-]+)':`)
	tCall   = regexp.MustCompile(`\bt\('([a-zA-Z0-9_.-]+)'`)
	actCall = regexp.MustCompile(`this\.act\('([a-zA-Z0-9_.-]+)'`)
	attrKey = regexp.MustCompile(`data-i18n(?:-label|-placeholder|-title)?="([^"]+)"`)
)

func keysOf(text string) []string {
	var ks []string
	for _, m := range keyLine.FindAllStringSubmatch(text, -1) {
		ks = append(ks, m[1])
	}
	return ks
}

// TestCataloguesAgree checks that zh-CN and en have the same keys, no key twice,
// and that every key the code names exists.
func TestCataloguesAgree(t *testing.T) {
	files := staticFiles(t)
	zh, en := keysOf(files["static/i18n/zh-CN.js"]), keysOf(files["static/i18n/en.js"])
	if len(zh) < 50 {
		t.Fatalf("zh-CN.js has %d keys; the parser must be wrong", len(zh))
	}
	for name, ks := range map[string][]string{"zh-CN": zh, "en": en} {
		seen := map[string]bool{}
		for _, k := range ks {
			if seen[k] {
				t.Errorf("%s: key %q twice", name, k)
			}
			seen[k] = true
		}
	}
	for _, k := range zh {
		if !slices.Contains(en, k) {
			t.Errorf("en.js lacks %q", k)
		}
	}
	for _, k := range en {
		if !slices.Contains(zh, k) {
			t.Errorf("zh-CN.js lacks %q", k)
		}
	}
	for p, text := range files {
		var used [][]string
		used = append(used, tCall.FindAllStringSubmatch(text, -1)...)
		used = append(used, actCall.FindAllStringSubmatch(text, -1)...)
		used = append(used, attrKey.FindAllStringSubmatch(text, -1)...)
		for _, m := range used {
			k := m[1]
			if strings.HasSuffix(k, ".") { // a prefix completed at run time
				continue
			}
			if !slices.Contains(zh, k) {
				t.Errorf("%s uses key %q, which zh-CN.js lacks", p, k)
			}
		}
	}
}
