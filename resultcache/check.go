package resultcache

import (
	"context"
	"slices"
	"strings"
)

// Relation is a relation as the statement names it; Schema "" means
// unqualified (resolved with the session's search_path).
type Relation struct {
	Schema, Name string
}

// Query is what the analyzer knows about a statement, converted by the
// proxy from rewrite/'s types.
type Query struct {
	Database string
	// User is the effective role, for "$user" in SearchPath.
	User       string
	SearchPath string
	Reads      []Relation
	// Functions are the called functions, "name" or "schema.name".
	// SQL-value functions (current_timestamp, current_user...) must be
	// reported by the analyzer under their pg_proc names (now, ...) or
	// make the statement non-ReadOnly.
	Functions []string
	ReadOnly  bool
	// Single: exactly one statement in the query string.
	Single bool
	// Locking: FOR UPDATE/SHARE/...
	Locking bool
	// InTransaction: the session is inside a transaction block
	// (ReadyForQuery status not 'I').
	InTransaction bool
	// TempObjects: the session created temporary objects, so an
	// unqualified name may resolve to its pg_temp schema, which the cache
	// can't see.
	TempObjects bool
	// Kind is the statement kind: select, values or table are eligible.
	Kind string
}

// Skip reasons, the label values of sluice_resultcache_skips_total.
const (
	ReasonMultiStatement     = "multi_statement"
	ReasonNotSelect          = "not_select"
	ReasonLocking            = "locking"
	ReasonInTransaction      = "in_transaction"
	ReasonTempRelation       = "temp_relation"
	ReasonSequence           = "sequence"
	ReasonVolatileFunction   = "volatile_function"
	ReasonVolatilePolicy     = "volatile_policy"
	ReasonUnknownRelation    = "unknown_relation"
	ReasonUnknownFunction    = "unknown_function"
	ReasonSystemCatalog      = "system_catalog"
	ReasonForeignTable       = "foreign_table"
	ReasonUnloggedRelation   = "unlogged_relation"
	ReasonCatalogUnavailable = "catalog_unavailable"
	ReasonReplicationWait    = "replication_not_ready"
)

// Check decides whether a statement may be cached and returns the
// relations (OIDs, sorted, views and partitioned/inherited tables expanded
// to what they read) whose versions its entries depend on. Every refusal
// is counted by reason. It reads the server's catalogs (cached; reloaded on
// the catalog_refresh timer and after CatalogChanged).
func (c *Cache) Check(ctx context.Context, q Query) (ok bool, reason string, rels []RelID) {
	reason, rels = c.check(ctx, &q)
	if reason != "" {
		metricSkips.WithLabelValues(reason).Inc()
		return false, reason, nil
	}
	return true, "", rels
}

func (c *Cache) check(ctx context.Context, q *Query) (string, []RelID) {
	switch {
	case !q.Single:
		return ReasonMultiStatement, nil
	case q.Locking && eligibleKind(q.Kind):
		// Before ReadOnly: the analyzer counts a locking SELECT as not
		// read-only (it takes row locks), and "locking" is what it is.
		return ReasonLocking, nil
	case !q.ReadOnly || !eligibleKind(q.Kind):
		return ReasonNotSelect, nil
	case q.InTransaction:
		return ReasonInTransaction, nil
	}
	if c.repl != nil && !c.repl.ready(q.Database) {
		return ReasonReplicationWait, nil
	}
	if len(q.Reads) == 0 && len(q.Functions) == 0 {
		return "", nil
	}
	snap, err := c.catalogs.get(ctx, q.Database)
	if err != nil {
		if c.redisLog.ok() {
			c.log.Warn().Err(err).Str("database", q.Database).Msg("catalog unavailable, not caching")
		}
		return ReasonCatalogUnavailable, nil
	}
	path := effectivePath(parseSearchPath(q.SearchPath, q.User), snap.schemas)
	for _, fn := range q.Functions {
		if r := snap.checkFunction(fn, path); r != "" {
			return r, nil
		}
	}
	var out []RelID
	seen := make(map[RelID]bool)
	for _, rel := range q.Reads {
		ri, r := snap.resolveRead(rel, path, q.TempObjects)
		if r != "" {
			return r, nil
		}
		if r := c.expandRead(snap, ri, seen, &out); r != "" {
			return r, nil
		}
	}
	slices.Sort(out)
	return "", out
}

func eligibleKind(k string) bool {
	switch strings.ToLower(k) {
	case "select", "values", "table":
		return true
	}
	return false
}

// checkFunction: a qualified name must be IMMUTABLE in every overload; an
// unqualified one in every overload in every schema of the path, since
// which one PostgreSQL picks depends on argument types.
func (s *catalogSnap) checkFunction(fn string, path []string) string {
	if schema, name, ok := strings.Cut(fn, "."); ok {
		if isTempSchema(schema) {
			return ReasonTempRelation
		}
		imm, found := s.funcs[qname{schema, name}]
		switch {
		case !found:
			return ReasonUnknownFunction
		case !imm:
			return ReasonVolatileFunction
		}
		return ""
	}
	found := false
	for _, schema := range path {
		if imm, ok := s.funcs[qname{schema, fn}]; ok {
			found = true
			if !imm {
				return ReasonVolatileFunction
			}
		}
	}
	if !found {
		return ReasonUnknownFunction
	}
	return ""
}

// resolveRead finds the relation PostgreSQL would read: qualified names
// directly; unqualified ones in the first schema of the path that has
// them (pg_catalog first unless placed), after pg_temp, which is why a
// session with temporary objects is refused for unqualified names.
func (s *catalogSnap) resolveRead(rel Relation, path []string, temp bool) (*relInfo, string) {
	if rel.Schema != "" {
		if isTempSchema(rel.Schema) {
			return nil, ReasonTempRelation
		}
		ri := s.rels[qname{rel.Schema, rel.Name}]
		if ri == nil {
			return nil, ReasonUnknownRelation
		}
		return ri, ""
	}
	if temp {
		return nil, ReasonTempRelation
	}
	for _, schema := range path {
		if ri := s.rels[qname{schema, rel.Name}]; ri != nil {
			return ri, ""
		}
	}
	return nil, ReasonUnknownRelation
}

// expandRead adds ri and everything reading it reads: a view's relations
// (recursively), a partitioned or inheritance parent's children.
func (c *Cache) expandRead(s *catalogSnap, ri *relInfo, seen map[RelID]bool, out *[]RelID) string {
	if seen[ri.oid] {
		return ""
	}
	seen[ri.oid] = true
	switch {
	case ri.persistence == 't' || isTempSchema(ri.schema):
		return ReasonTempRelation
	case ri.kind == 'S':
		return ReasonSequence
	case isSystemSchema(ri.schema):
		return ReasonSystemCatalog
	case ri.kind == 'f':
		return ReasonForeignTable
	case ri.persistence == 'u' && c.repl != nil:
		// Unlogged tables are not decoded by logical replication.
		return ReasonUnloggedRelation
	case ri.volatile:
		return ReasonVolatileFunction
	case ri.policyVolatile:
		return ReasonVolatilePolicy
	}
	*out = append(*out, ri.oid)
	for _, id := range ri.refs {
		dep := s.byOID[id]
		if dep == nil {
			return ReasonUnknownRelation
		}
		if r := c.expandRead(s, dep, seen, out); r != "" {
			return r
		}
	}
	for _, id := range ri.children {
		ch := s.byOID[id]
		if ch == nil {
			return ReasonUnknownRelation
		}
		if r := c.expandRead(s, ch, seen, out); r != "" {
			return r
		}
	}
	return ""
}

// expandWrite lists what a write to ri changes: itself, its partitions and
// inheritance children (a write to a parent lands in them), and for an
// updatable view its base relations.
func (s *catalogSnap) expandWrite(ri *relInfo, seen map[RelID]bool, out *[]RelID) {
	if seen[ri.oid] {
		return
	}
	seen[ri.oid] = true
	*out = append(*out, ri.oid)
	for _, id := range append(slices.Clip(ri.refs), ri.children...) {
		if dep := s.byOID[id]; dep != nil {
			s.expandWrite(dep, seen, out)
		} else {
			*out = append(*out, id)
		}
	}
}

// CatalogChanged tells the cache that DDL ran on db through Sluice: the
// next Check reloads the catalogs before answering.
func (c *Cache) CatalogChanged(db string) { c.catalogs.changed(db) }

// CallsUserFunction reports whether fns name a function outside the system
// schemas that is not IMMUTABLE: such a call may write (PostgreSQL refuses
// writes only in STABLE and IMMUTABLE functions, and the catalog snapshot
// keeps just "immutable or not"), so a statement calling one is treated as
// a write of the whole database. Unknown names (SQL keywords the analyzer
// reports as functions) don't count.
func (c *Cache) CallsUserFunction(ctx context.Context, db, searchPath, user string, fns []string) bool {
	if len(fns) == 0 {
		return false
	}
	snap, err := c.catalogs.get(ctx, db)
	if err != nil {
		return false
	}
	path := effectivePath(parseSearchPath(searchPath, user), snap.schemas)
	user1 := func(schema, name string) bool {
		if isSystemSchema(schema) {
			return false
		}
		imm, ok := snap.funcs[qname{schema, name}]
		return ok && !imm
	}
	for _, fn := range fns {
		if schema, name, ok := strings.Cut(fn, "."); ok {
			if user1(schema, name) {
				return true
			}
			continue
		}
		for _, schema := range path {
			if _, ok := snap.funcs[qname{schema, fn}]; ok {
				if user1(schema, fn) {
					return true
				}
				break
			}
		}
	}
	return false
}
