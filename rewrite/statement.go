package rewrite

// Statement is the analysis of one SQL statement. It is shared between
// callers and cached: treat it as read-only.
type Statement struct {
	// Kind names the statement class (see kinds.go): select, insert, update,
	// delete, merge, copy_from, copy_to, ddl, create_table_as, truncate,
	// refresh_matview, begin, commit, rollback, savepoint, transaction, set,
	// reset, show, discard, prepare, execute, deallocate, listen, unlisten,
	// notify, call, do, explain, declare, fetch, close, lock, vacuum, load,
	// values or other.
	Kind string
	// ReadOnly is true when, as written, the statement changes no table data
	// or schema and takes no row locks. Functions it calls may still write:
	// the result cache must also check Functions.
	ReadOnly bool
	// Reads and Writes are the relations the statement touches, through
	// CTEs, subqueries, joins, INSERT ... SELECT, UPDATE ... FROM, MERGE,
	// COPY, TRUNCATE, DDL and REFRESH MATERIALIZED VIEW. CTE names are not
	// relations. A relation written is not repeated in Reads.
	Reads, Writes []Relation
	// Functions are the functions called, qualified where written
	// ("pg_catalog.now"); SQL-standard value functions appear under their
	// keyword ("current_timestamp", "current_user") because they are not
	// spelled as calls.
	Functions []string
	// Locking is true when any SELECT in it has FOR UPDATE/SHARE/...
	Locking bool
	// TxControl is "begin", "commit", "rollback", "savepoint", "release",
	// "rollback_to", "set_transaction", "prepare_transaction",
	// "commit_prepared", "rollback_prepared" or "".
	TxControl string
	// SessionState lists what the statement changes in the session beyond
	// the current transaction, so the proxy knows what to reset.
	SessionState []StateChange
	// TempObjects is true when it creates a temporary table, view or
	// sequence.
	TempObjects bool
	// Fingerprint and Normalized come from pg_query (constants replaced by
	// $n); equal fingerprints mean the same query shape.
	Fingerprint uint64
	Normalized  string
	// ParseError is non-empty when the text did not parse (or was not
	// analyzed because it is too large); such text is passed through
	// unchanged and every other field is zero.
	ParseError string
	// Text is this statement's own text inside the input, without the
	// separating semicolon.
	Text string
	// Pos is the byte offset of Text in the analyzed input (the Decision's
	// SQL when it was not rewritten), so the proxy can edit one statement
	// of several in place.
	Pos int
}

// Relation is a table, view, sequence or other relation as written in the
// statement; Schema is "" when the name was not qualified (its schema then
// depends on search_path, which the analyzer cannot know).
type Relation struct {
	Schema, Name string
}

// String is schema.name or name.
func (r Relation) String() string {
	if r.Schema == "" {
		return r.Name
	}
	return r.Schema + "." + r.Name
}

// StateChange is one change to session state. Kind is one of the
// StateXxx constants.
type StateChange struct {
	Kind string
	// Name is the setting, prepared statement, channel, object or cursor
	// name ("*" when it cannot be known from the text, e.g. set_config with
	// a non-constant name or UNLISTEN *; "all" for DISCARD ALL / DEALLOCATE
	// ALL / RESET ALL).
	Name string
	// Value is the new value of a SET as written (empty for RESET/DEFAULT).
	Value string
	// Local is SET LOCAL or set_config(..., true): it ends with the
	// transaction.
	Local bool
	// IsReset is RESET or SET ... TO DEFAULT.
	IsReset bool
}

// Kinds of StateChange.
const (
	StateSet          = "set"             // SET, RESET, SET ROLE, SET SESSION AUTHORIZATION, set_config()
	StateDiscard      = "discard"         // DISCARD ALL/PLANS/TEMP/SEQUENCES (Name is the mode)
	StatePrepare      = "prepare"         // SQL PREPARE name
	StateDeallocate   = "deallocate"      // DEALLOCATE name / ALL
	StateListen       = "listen"          // LISTEN channel
	StateUnlisten     = "unlisten"        // UNLISTEN channel / *
	StateTempObject   = "temp_object"     // CREATE TEMP TABLE/VIEW/SEQUENCE
	StateHoldCursor   = "hold_cursor"     // DECLARE ... WITH HOLD
	StateAdvisoryLock = "advisory_lock"   // pg_advisory_lock*, pg_try_advisory_lock* (session level)
	StateAdvisoryFree = "advisory_unlock" // pg_advisory_unlock*
	StateLoad         = "load"            // LOAD 'library'
)
