package rewrite

import (
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// walker collects relations, functions, locking and session-state facts
// from one raw statement tree. It walks every message reflectively so a node
// type it has no case for is still searched for relations and calls; only
// the nodes whose meaning differs (write targets, CTE names, calls with
// side effects) have a case.
type walker struct {
	reads, writes []Relation
	// scope holds the CTE names visible at the current point: an
	// unqualified name in it is the CTE, not a relation.
	scope     []string
	functions []string
	locking   bool
	state     []StateChange
	temp      bool
	// ddl makes bare RangeVars outside any SELECT count as written: a DDL
	// statement changes (or locks and adds triggers to) every relation it
	// names.
	ddl      bool
	maxParam int
	// depth bounds recursion: the parser already caps nesting, this keeps a
	// malformed tree from exhausting the stack.
	depth int
}

const maxWalkDepth = 2000

func (w *walker) addRead(rv *pg.RangeVar) {
	if rv == nil || rv.Relname == "" {
		return
	}
	w.reads = appendRel(w.reads, Relation{Schema: rv.Schemaname, Name: rv.Relname})
}

func (w *walker) addWrite(rv *pg.RangeVar) {
	if rv == nil || rv.Relname == "" {
		return
	}
	if rv.Relpersistence == "t" {
		w.temp = true
	}
	w.writes = appendRel(w.writes, Relation{Schema: rv.Schemaname, Name: rv.Relname})
}

func appendRel(list []Relation, r Relation) []Relation {
	for _, x := range list {
		if x == r {
			return list
		}
	}
	return append(list, r)
}

// node walks a Node wrapper.
func (w *walker) node(n *pg.Node) {
	if n == nil || n.Node == nil {
		return
	}
	w.msg(n.ProtoReflect())
}

func (w *walker) nodes(ns []*pg.Node) {
	for _, n := range ns {
		w.node(n)
	}
}

// msg dispatches on the concrete message type; anything without a case is
// walked field by field.
func (w *walker) msg(m protoreflect.Message) {
	if !m.IsValid() {
		return
	}
	w.depth++
	defer func() { w.depth-- }()
	if w.depth > maxWalkDepth {
		return
	}
	switch x := m.Interface().(type) {
	case *pg.Node:
		// Node is a oneof wrapper: walk the one set field.
		w.fields(m, "")
		return
	case *pg.RangeVar:
		if x.Schemaname == "" && w.inScope(x.Relname) {
			return
		}
		if w.ddl {
			w.addWrite(x)
		} else {
			w.addRead(x)
		}
		return
	case *pg.SelectStmt:
		if len(x.LockingClause) > 0 {
			w.locking = true
		}
		if x.IntoClause != nil {
			w.addWrite(x.IntoClause.Rel)
		}
		// FOR UPDATE OF t names a FROM item (often an alias), not
		// another relation.
		w.withoutDDL(func() {
			w.withCTEs(x.WithClause, func() { w.fields(m, "into_clause", "locking_clause", "with_clause") })
		})
		return
	case *pg.InsertStmt:
		w.addWrite(x.Relation)
		w.withoutDDL(func() { w.withCTEs(x.WithClause, func() { w.fields(m, "relation", "with_clause") }) })
		return
	case *pg.UpdateStmt:
		w.addWrite(x.Relation)
		w.withoutDDL(func() { w.withCTEs(x.WithClause, func() { w.fields(m, "relation", "with_clause") }) })
		return
	case *pg.DeleteStmt:
		w.addWrite(x.Relation)
		w.withoutDDL(func() { w.withCTEs(x.WithClause, func() { w.fields(m, "relation", "with_clause") }) })
		return
	case *pg.MergeStmt:
		w.addWrite(x.Relation)
		w.withoutDDL(func() { w.withCTEs(x.WithClause, func() { w.fields(m, "relation", "with_clause") }) })
		return
	case *pg.CopyStmt:
		if x.IsFrom {
			w.addWrite(x.Relation)
		} else {
			w.addRead(x.Relation)
		}
		w.withoutDDL(func() { w.fields(m, "relation") })
		return
	case *pg.IntoClause:
		w.addWrite(x.Rel)
		w.withoutDDL(func() { w.fields(m, "rel") })
		return
	case *pg.FuncCall:
		w.funcCall(x)
	case *pg.CommentStmt:
		if isRelObjectType(x.Objtype) {
			w.writes = appendRel(w.writes, relFromNames(x.Object))
		}
		return
	case *pg.ParamRef:
		if int(x.Number) > w.maxParam {
			w.maxParam = int(x.Number)
		}
		return
	case *pg.SQLValueFunction:
		w.functions = appendStr(w.functions, sqlValueFunctionName(x.Op))
	case *pg.DropStmt:
		w.dropObjects(x)
	}
	w.fields(m, "")
}

// withCTEs walks a WITH clause and then body with the CTE names in scope,
// following Postgres' visibility rules (parse_cte.c): in WITH RECURSIVE
// every CTE sees all of them; otherwise a CTE's query sees only the CTEs
// before it, so "WITH orders AS (SELECT * FROM orders)" reads the table.
// The names go out of scope after body, so a same-named table elsewhere in
// the statement is still a relation.
func (w *walker) withCTEs(wc *pg.WithClause, body func()) {
	if wc == nil {
		body()
		return
	}
	n := len(w.scope)
	if wc.Recursive {
		for _, c := range wc.Ctes {
			if cte := c.GetCommonTableExpr(); cte != nil {
				w.scope = append(w.scope, cte.Ctename)
			}
		}
	}
	for _, c := range wc.Ctes {
		cte := c.GetCommonTableExpr()
		if cte == nil {
			continue
		}
		w.node(cte.Ctequery)
		if !wc.Recursive {
			w.scope = append(w.scope, cte.Ctename)
		}
	}
	body()
	w.scope = w.scope[:n]
}

func (w *walker) inScope(name string) bool {
	for i := len(w.scope) - 1; i >= 0; i-- {
		if w.scope[i] == name {
			return true
		}
	}
	return false
}

func (w *walker) withoutDDL(f func()) {
	saved := w.ddl
	w.ddl = false
	f()
	w.ddl = saved
}

// fields walks every populated message field of m except skip, in
// declaration order (protoreflect's Range order is unspecified, and the
// analysis must be deterministic).
func (w *walker) fields(m protoreflect.Message, skip ...protoreflect.Name) {
	fds := m.Descriptor().Fields()
outer:
	for i := 0; i < fds.Len(); i++ {
		fd := fds.Get(i)
		if fd.Kind() != protoreflect.MessageKind || fd.IsMap() || !m.Has(fd) {
			continue
		}
		for _, s := range skip {
			if fd.Name() == s {
				continue outer
			}
		}
		v := m.Get(fd)
		if fd.IsList() {
			l := v.List()
			for j := 0; j < l.Len(); j++ {
				w.msg(l.Get(j).Message())
			}
			continue
		}
		w.msg(v.Message())
	}
}

// dropObjects records DROP TABLE/VIEW/... targets, which the parser keeps as
// name lists rather than RangeVars.
func (w *walker) dropObjects(x *pg.DropStmt) {
	if !isRelObjectType(x.RemoveType) {
		return
	}
	for _, o := range x.Objects {
		if r := relFromNames(o); r.Name != "" {
			w.writes = appendRel(w.writes, r)
		}
	}
}

func isRelObjectType(t pg.ObjectType) bool {
	switch t {
	case pg.ObjectType_OBJECT_TABLE, pg.ObjectType_OBJECT_VIEW, pg.ObjectType_OBJECT_MATVIEW,
		pg.ObjectType_OBJECT_INDEX, pg.ObjectType_OBJECT_SEQUENCE, pg.ObjectType_OBJECT_FOREIGN_TABLE:
		return true
	}
	return false
}

// relFromNames reads a qualified name kept as a List of String nodes.
func relFromNames(n *pg.Node) Relation {
	l := n.GetList()
	if l == nil {
		return Relation{}
	}
	names := stringList(l.Items)
	switch len(names) {
	case 1:
		return Relation{Name: names[0]}
	case 2:
		return Relation{Schema: names[0], Name: names[1]}
	case 3:
		return Relation{Schema: names[1], Name: names[2]}
	}
	return Relation{}
}

func stringList(items []*pg.Node) []string {
	out := make([]string, 0, len(items))
	for _, it := range items {
		if s := it.GetString_(); s != nil {
			out = append(out, s.Sval)
		}
	}
	return out
}

func appendStr(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

// funcCall records the call and the session-state effects of the calls that
// have them: set_config (Postgres docs, "Configuration Settings Functions")
// and the session-level advisory locks ("Advisory Lock Functions"), which
// outlive the transaction.
func (w *walker) funcCall(x *pg.FuncCall) {
	names := stringList(x.Funcname)
	if len(names) == 0 {
		return
	}
	full := strings.Join(names, ".")
	w.functions = appendStr(w.functions, full)
	base := names[len(names)-1]
	if len(names) == 2 && names[0] != "pg_catalog" {
		return // a user function that happens to share the name
	}
	switch base {
	case "set_config":
		sc := StateChange{Kind: StateSet, Name: "*"}
		if len(x.Args) == 3 {
			if s, ok := constString(x.Args[0]); ok {
				sc.Name = strings.ToLower(s)
			}
			if s, ok := constString(x.Args[1]); ok {
				sc.Value = s
			}
			if b, ok := constBool(x.Args[2]); ok {
				sc.Local = b
			}
		}
		w.state = append(w.state, sc)
	case "pg_advisory_lock", "pg_advisory_lock_shared", "pg_try_advisory_lock", "pg_try_advisory_lock_shared":
		w.state = append(w.state, StateChange{Kind: StateAdvisoryLock, Name: base})
	case "pg_advisory_unlock", "pg_advisory_unlock_shared", "pg_advisory_unlock_all":
		w.state = append(w.state, StateChange{Kind: StateAdvisoryFree, Name: base})
	}
}

// constString returns the value of a string/number constant, looking
// through a cast ('x'::text).
func constString(n *pg.Node) (string, bool) {
	if tc := n.GetTypeCast(); tc != nil {
		return constString(tc.Arg)
	}
	c := n.GetAConst()
	if c == nil || c.Isnull {
		return "", false
	}
	switch v := c.Val.(type) {
	case *pg.A_Const_Sval:
		return v.Sval.Sval, true
	case *pg.A_Const_Ival:
		return itoa(int64(v.Ival.Ival)), true
	case *pg.A_Const_Fval:
		return v.Fval.Fval, true
	case *pg.A_Const_Boolval:
		if v.Boolval.Boolval {
			return "true", true
		}
		return "false", true
	}
	return "", false
}

func constBool(n *pg.Node) (bool, bool) {
	s, ok := constString(n)
	if !ok {
		return false, false
	}
	switch strings.ToLower(s) {
	case "true", "t", "on", "yes", "y", "1":
		return true, true
	case "false", "f", "off", "no", "n", "0":
		return false, true
	}
	return false, false
}

// sqlValueFunctionName maps CURRENT_TIMESTAMP and friends (gram.y's
// SQLValueFunction) to their keyword.
func sqlValueFunctionName(op pg.SQLValueFunctionOp) string {
	name := strings.TrimPrefix(op.String(), "SVFOP_")
	name = strings.ToLower(name)
	if i := strings.LastIndexByte(name, '_'); i > 0 && strings.HasPrefix(name[i+1:], "n") && len(name[i+1:]) == 1 {
		// SVFOP_CURRENT_TIME_N: CURRENT_TIME(precision)
		name = name[:i]
	}
	return name
}
