package monitor

import (
	"errors"
	"io"
	"net/http"
)

// PurgeRequest is the POST /api/v1/cache/purge body: exactly one of the
// three selectors.
type PurgeRequest struct {
	Relation    string `json:"relation,omitempty"`
	Fingerprint string `json:"fingerprint,omitempty"`
	All         bool   `json:"all,omitempty"`
}

func (m *Monitor) handlePurge(w http.ResponseWriter, r *http.Request) {
	var req PurgeRequest
	if !decodeBody(w, r, &req) {
		return
	}
	n := 0
	for _, set := range []bool{req.Relation != "", req.Fingerprint != "", req.All} {
		if set {
			n++
		}
	}
	if n != 1 {
		jsonError(w, http.StatusBadRequest, `give exactly one of "relation", "fingerprint" or "all": true`)
		return
	}
	if m.deps.Purge == nil {
		jsonError(w, http.StatusNotImplemented, "no result cache configured")
		return
	}
	purged, err := m.deps.Purge(r.Context(), req.Relation, req.Fingerprint, req.All)
	if err != nil {
		jsonError(w, http.StatusInternalServerError, "purge failed: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"purged": purged})
}

func (m *Monitor) handleReload(w http.ResponseWriter, r *http.Request) {
	if _, err := io.Copy(io.Discard, r.Body); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			jsonError(w, http.StatusRequestEntityTooLarge, "request body exceeds admin.max_body_bytes")
			return
		}
	}
	if m.deps.Reload == nil {
		jsonError(w, http.StatusNotImplemented, "reload is not wired")
		return
	}
	if err := m.deps.Reload(); err != nil {
		jsonError(w, http.StatusInternalServerError, "reload failed: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "reloaded"})
}
