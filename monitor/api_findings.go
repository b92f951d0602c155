package monitor

import (
	"net/http"
	"time"
)

// BottlenecksResponse is /api/v1/bottlenecks.
type BottlenecksResponse struct {
	GeneratedAt time.Time `json:"generated_at"`
	Enabled     bool      `json:"enabled"`
	Findings    []Finding `json:"findings"`
}

func (m *Monitor) handleBottlenecks(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, BottlenecksResponse{GeneratedAt: time.Now(), Enabled: m.col != nil, Findings: m.store.list()})
}

// RecommendationsResponse is /api/v1/recommendations.
type RecommendationsResponse struct {
	GeneratedAt     time.Time        `json:"generated_at"`
	Recommendations []Recommendation `json:"recommendations"`
}

func (m *Monitor) handleRecommendations(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, RecommendationsResponse{GeneratedAt: time.Now(), Recommendations: recommendations(m.store.list())})
}
