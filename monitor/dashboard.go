package monitor

import (
	"embed"
	"io/fs"
	"net/http"
	"path"
)

// web holds the dashboard: one page, one script, one stylesheet, all
// served from the binary (no CDN), charts drawn on <canvas> by app.js.
//
//go:embed web
var web embed.FS

// dashboardCSP keeps the page to its own origin: no inline script, no
// third-party anything.
const dashboardCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

func (m *Monitor) handleDashboard(w http.ResponseWriter, r *http.Request) {
	serveAsset(w, "index.html")
}

func (m *Monitor) handleAssets(w http.ResponseWriter, r *http.Request) {
	name := path.Base(r.URL.Path)
	if name == "index.html" || r.URL.Path != "/assets/"+name {
		jsonError(w, http.StatusNotFound, "no such asset")
		return
	}
	serveAsset(w, name)
}

func serveAsset(w http.ResponseWriter, name string) {
	b, err := fs.ReadFile(web, "web/"+name)
	if err != nil {
		jsonError(w, http.StatusNotFound, "no such asset")
		return
	}
	ct := "application/octet-stream"
	switch path.Ext(name) {
	case ".html":
		ct = "text/html; charset=utf-8"
	case ".js":
		ct = "text/javascript; charset=utf-8"
	case ".css":
		ct = "text/css; charset=utf-8"
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Security-Policy", dashboardCSP)
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("Referrer-Policy", "no-referrer")
	_, _ = w.Write(b)
}
