package monitor

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/pprof"
	"strconv"
	"strings"
	"time"
)

// route is one admin endpoint; the table in routes() is the whole API.
type route struct {
	path   string
	method string // GET also answers HEAD
	auth   bool
	h      http.HandlerFunc
}

func (m *Monitor) routes() []route {
	return []route{
		{"/healthz", http.MethodGet, false, m.handleHealthz},
		{"/readyz", http.MethodGet, true, m.handleReadyz},
		{"/metrics", http.MethodGet, true, m.handleMetrics},
		{"/api/v1/stats", http.MethodGet, true, m.handleStats},
		{"/api/v1/queries", http.MethodGet, true, m.handleQueries},
		{"/api/v1/system", http.MethodGet, true, m.handleSystem},
		{"/api/v1/system/history", http.MethodGet, true, m.handleSystemHistory},
		{"/api/v1/timeline", http.MethodGet, true, m.handleTimeline},
		{"/api/v1/bottlenecks", http.MethodGet, true, m.handleBottlenecks},
		{"/api/v1/recommendations", http.MethodGet, true, m.handleRecommendations},
		{"/api/v1/cache/purge", http.MethodPost, true, m.handlePurge},
		{"/api/v1/reload", http.MethodPost, true, m.handleReload},
		// Go profiles of the running proxy (CPU: ?seconds=N, at most the
		// write timeout), for finding what the hot path spends.
		{"/debug/pprof/profile", http.MethodGet, true, pprof.Profile},
		{"/debug/pprof/heap", http.MethodGet, true, pprof.Handler("heap").ServeHTTP},
		{"/debug/pprof/allocs", http.MethodGet, true, pprof.Handler("allocs").ServeHTTP},
		{"/debug/pprof/goroutine", http.MethodGet, true, pprof.Handler("goroutine").ServeHTTP},
		// The dashboard shell holds no data; it fetches the API with the
		// token the operator gives it (see docs/monitor.md).
		{"/", http.MethodGet, false, m.handleDashboard},
		{"/assets/", http.MethodGet, false, m.handleAssets},
	}
}

func (m *Monitor) newServer(a AdminConfig) *http.Server {
	mux := http.NewServeMux()
	for _, rt := range m.routes() {
		mux.Handle(rt.path, m.wrap(rt))
	}
	return &http.Server{
		Handler:           mux,
		ReadTimeout:       a.ReadTimeout,
		ReadHeaderTimeout: a.ReadTimeout,
		WriteTimeout:      a.WriteTimeout,
		IdleTimeout:       2 * a.ReadTimeout,
		MaxHeaderBytes:    64 << 10,
	}
}

// statusWriter remembers the status for the request metric.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// wrap applies, in order: exact path, method, body limit, auth.
func (m *Monitor) wrap(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			code := sw.code
			if code == 0 {
				code = http.StatusOK
			}
			metricAdminRequests.WithLabelValues(rt.path, strconv.Itoa(code)).Inc()
		}()
		w = sw
		w.Header().Set("X-Content-Type-Options", "nosniff")
		exact := rt.path == r.URL.Path || (strings.HasSuffix(rt.path, "/") && rt.path != "/" && strings.HasPrefix(r.URL.Path, rt.path))
		if !exact {
			jsonError(w, http.StatusNotFound, "no such endpoint: "+r.URL.Path)
			return
		}
		if r.Method != rt.method && !(rt.method == http.MethodGet && r.Method == http.MethodHead) {
			allow := rt.method
			if rt.method == http.MethodGet {
				allow += ", HEAD"
			}
			w.Header().Set("Allow", allow)
			jsonError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed; use "+rt.method)
			return
		}
		cfg := m.cfg.Load()
		if r.ContentLength > cfg.Admin.MaxBodyBytes {
			jsonError(w, http.StatusRequestEntityTooLarge, "request body exceeds admin.max_body_bytes")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, cfg.Admin.MaxBodyBytes)
		if rt.auth && !authorized(r, cfg.Admin.Token) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="sluice-admin"`)
			jsonError(w, http.StatusUnauthorized, "missing or invalid bearer token")
			return
		}
		rt.h(w, r)
	})
}

// authorized compares SHA-256 digests in constant time, so neither the
// content nor the length of the token leaks through timing.
func authorized(r *http.Request, token string) bool {
	if token == "" {
		return true
	}
	h := r.Header.Get("Authorization")
	const prefix = "bearer "
	if len(h) < len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(h[len(prefix):])))
	want := sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// APIError is the body of every non-2xx JSON answer.
type APIError struct {
	Error  string `json:"error"`
	Status int    `json:"status"`
}

func jsonError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, APIError{Error: msg, Status: code})
}

// decodeBody reads a JSON body within the size limit; it writes the error
// answer itself and returns false on failure.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			jsonError(w, http.StatusRequestEntityTooLarge, "request body exceeds admin.max_body_bytes")
			return false
		}
		jsonError(w, http.StatusBadRequest, "bad JSON body: "+err.Error())
		return false
	}
	return true
}

var startTime = time.Now()
