package rewrite

import (
	"time"

	"github.com/rs/zerolog"
)

// Decision is what the proxy does with one Query or Parse text. Decisions
// are shared between calls (a repeat of the same text in the same situation
// returns the same pointer): treat them as read-only.
type Decision struct {
	// SQL is the text to send to Postgres; equal to the input when
	// Rewritten is false.
	SQL       string
	Rewritten bool
	// Statements is the analysis of what is sent: of the input, or of the
	// replacement when a replace rule rewrote a statement (so the result
	// cache invalidates on the relations actually read).
	Statements []*Statement
	// Block, when set, means: answer with an ErrorResponse and do not send
	// anything to Postgres.
	Block *Block
	// MaxRows is > 0 when a row limit was injected or lowered and may bind:
	// when a result set comes back with exactly MaxRows rows the proxy sends
	// Notice to the client. With several limited SELECTs in one Query,
	// Limits gives each statement's limit (0 = none) and MaxRows is the
	// first non-zero one.
	MaxRows int
	Limits  []int
	// LimitRule is the rule that set MaxRows ("max_rows" for the global
	// default).
	LimitRule string
	// Notice is the truncation notice text (rewrite.truncation_notice).
	Notice string
	// Cache is for the result cache: from rules and from
	// /* sluice:cache ttl=60s */ or /* sluice:nocache */ comments.
	Cache CacheDirective
	// Route is "", "primary" or "replica".
	Route string
	// Log asks the proxy to log the statement and Rules at info.
	Log bool
	// Rules names every rule that matched, in order.
	Rules []string

	// rewrites and blocks count this decision each time it is returned.
	counters []counterInc
}

// Block is an answer Sluice gives instead of Postgres.
type Block struct {
	Code    string // SQLSTATE
	Message string
	Rule    string
}

// CacheDirective tells the result cache what to do with the statement.
type CacheDirective struct {
	Set bool          // a rule or comment said something
	Off bool          // never cache
	TTL time.Duration // cache with this TTL (0: the cache's default)
}

// MarshalZerologObject lets the proxy log a decision with its own
// per-connection logger: log.Info().EmbedObject(d).Msg("rewrite rule").
func (d *Decision) MarshalZerologObject(e *zerolog.Event) {
	e.Strs("rules", d.Rules).Str("sql", d.SQL).Bool("rewritten", d.Rewritten)
	if d.Block != nil {
		e.Str("blocked_by", d.Block.Rule)
	}
	if d.MaxRows > 0 {
		e.Int("max_rows", d.MaxRows).Str("limit_rule", d.LimitRule)
	}
}

// ParseError reports whether the text did not parse (it is sent unchanged).
func (d *Decision) ParseError() bool {
	return len(d.Statements) == 1 && d.Statements[0].ParseError != ""
}
