// Package rewrite owns SQL analysis and the rule engine on Sluice's query
// path. The proxy hands it the text of every simple-protocol Query and every
// extended-protocol Parse together with the session's facts, and gets back a
// Decision: the text to send (possibly with a row limit, a pg_hint_plan hint
// or a replacement), or a Block to answer with an ErrorResponse, plus the
// per-statement analysis (kind, relations read and written, functions,
// locking, transaction control, session-state changes, fingerprint) that the
// result cache and the monitor reuse.
//
// It takes plain values and returns decisions: it never sees a connection, a
// wire message or pgproto3, and it must not touch proxy/, resultcache/ or
// monitor/. Analysis is cached by exact text in a bounded cache so a repeated
// statement is never parsed twice; an Engine is immutable once built and a
// config reload builds a new one that may share the analysis cache.
//
// A statement that does not parse is passed through unchanged so the client
// sees Postgres' own error; the analyzer never blocks traffic by failing.
package rewrite
