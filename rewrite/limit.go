package rewrite

import (
	"math"
	"strconv"
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"
)

// limitKind says how a row limit N is put into one statement's text.
type limitKind uint8

const (
	limitNone     limitKind = iota // never limited (not a plain top-level SELECT, or a single aggregate row)
	limitAppend                    // no LIMIT: insert " LIMIT N" after the last token
	limitConst                     // LIMIT/FETCH constant or ALL/NULL at [a,b): replace it when larger than N
	limitParam                     // LIMIT $n at [a,b): becomes LEAST($n, N::bigint)
	limitTemplate                  // deparsed text with the limit at a placeholder: prefix + N + suffix
)

// limitPlan is computed once per analyzed statement so that applying any N
// later is a string concatenation, never a parse. Positions are offsets in
// Statement.Text.
type limitPlan struct {
	kind limitKind
	a, b int
	// existing is the current constant limit for limitConst (-1 for LIMIT
	// ALL / LIMIT NULL, which mean no limit).
	existing       float64
	prefix, suffix string
}

// apply returns the statement text limited to n rows and whether it
// changed. Postgres' own LIMIT semantics decide "larger": a smaller or
// equal constant limit is kept as the client wrote it.
func (p *limitPlan) apply(text string, n int) (string, bool) {
	ns := strconv.Itoa(n)
	switch p.kind {
	case limitAppend:
		return text[:p.a] + " LIMIT " + ns + text[p.a:], true
	case limitConst:
		if p.existing >= 0 && p.existing <= float64(n) {
			return text, false
		}
		return text[:p.a] + ns + text[p.b:], true
	case limitParam:
		// ::bigint keeps the parameter's inferred type int8, as for a bare
		// LIMIT $n (LIMIT coerces to bigint, parse_clause.c
		// transformLimitClause); LEAST($n, N) alone would make it int4 and
		// change what Describe reports to the client.
		return text[:p.a] + "LEAST(" + text[p.a:p.b] + ", " + ns + "::bigint)" + text[p.b:], true
	case limitTemplate:
		return p.prefix + ns + p.suffix, true
	}
	return text, false
}

// planLimit decides how a top-level statement can take a row limit. text is
// the statement's own text (Statement.Text), base the offset of that text in
// the string the parser saw, toks the scanner tokens of the statement.
func planLimit(stmt *pg.Node, raw *pg.RawStmt, text string, base int, toks []*pg.ScanToken) limitPlan {
	sel := stmt.GetSelectStmt()
	if sel == nil || sel.IntoClause != nil || singleAggregateRow(sel) {
		return limitPlan{}
	}
	if sel.LimitCount == nil {
		if len(sel.LockingClause) > 0 && sel.LimitOffset != nil {
			// "OFFSET n FOR UPDATE LIMIT m" is not in the grammar
			// (gram.y select_no_parens): rebuild the text instead.
			return templatePlan(raw, nil)
		}
		return limitPlan{kind: limitAppend, a: len(text)}
	}
	switch c := sel.LimitCount.Node.(type) {
	case *pg.Node_AConst:
		loc := int(c.AConst.Location) - base
		if c.AConst.Location < 0 {
			// FETCH FIRST ROWS ONLY without a count means 1 (gram.y).
			if iv, ok := c.AConst.Val.(*pg.A_Const_Ival); ok && iv.Ival.Ival <= 1 {
				return limitPlan{kind: limitConst, existing: float64(iv.Ival.Ival)}
			}
			return templatePlan(raw, sel.LimitCount)
		}
		if c.AConst.Isnull {
			a, b, ok := tokenAt(toks, base, loc)
			if !ok {
				return templatePlan(raw, sel.LimitCount)
			}
			return limitPlan{kind: limitConst, a: a, b: b, existing: -1}
		}
		var v float64
		switch x := c.AConst.Val.(type) {
		case *pg.A_Const_Ival:
			v = float64(x.Ival.Ival)
		case *pg.A_Const_Fval:
			f, err := strconv.ParseFloat(x.Fval.Fval, 64)
			if err != nil || math.IsNaN(f) {
				return templatePlan(raw, sel.LimitCount)
			}
			v = f
		default:
			return templatePlan(raw, sel.LimitCount)
		}
		if v <= 0 {
			// Negative is an error in Postgres, 0 returns nothing: keep it.
			return limitPlan{kind: limitConst, existing: 0}
		}
		a, b, ok := tokenAt(toks, base, loc)
		if !ok || !isNumberToken(text[a:b]) {
			return templatePlan(raw, sel.LimitCount)
		}
		return limitPlan{kind: limitConst, a: a, b: b, existing: v}
	case *pg.Node_ParamRef:
		a, b, ok := tokenAt(toks, base, int(c.ParamRef.Location)-base)
		if !ok || !strings.HasPrefix(text[a:b], "$") {
			return templatePlan(raw, sel.LimitCount)
		}
		return limitPlan{kind: limitParam, a: a, b: b}
	}
	return templatePlan(raw, sel.LimitCount)
}

func isNumberToken(s string) bool {
	if s == "" || !(s[0] >= '0' && s[0] <= '9' || s[0] == '.') {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && c != '.' && c != '_' && c != 'e' && c != 'E' && c != 'x' && c != 'X' && c != 'o' && c != 'O' && c != 'b' && c != 'B' && !(c >= 'a' && c <= 'f') && !(c >= 'A' && c <= 'F') && c != '+' && c != '-' {
			return false
		}
	}
	return true
}

// tokenAt returns the bounds (relative to the statement) of the token that
// starts at rel.
func tokenAt(toks []*pg.ScanToken, base, rel int) (int, int, bool) {
	for _, t := range toks {
		if int(t.Start)-base == rel {
			return rel, int(t.End) - base, true
		}
	}
	return 0, 0, false
}

// parserVersion is the protobuf tree version Deparse insists on; it is
// read from a parse at start-up so an upgrade of pg_query needs no edit.
var parserVersion = func() int32 {
	r, err := pg.Parse("SELECT 1")
	if err != nil {
		return 0
	}
	return r.Version
}()

// templatePlan handles the shapes splicing cannot: it deparses the statement
// with the limit replaced by a placeholder constant (LEAST(old, placeholder)
// when there was a limit expression) and keeps the text around the
// placeholder. Formatting and comments are lost; correctness is kept.
func templatePlan(raw *pg.RawStmt, old *pg.Node) limitPlan {
	sel := raw.GetStmt().GetSelectStmt()
	if sel == nil {
		return limitPlan{}
	}
	const placeholder = 918273645
	saved := sel.LimitCount
	savedOpt := sel.LimitOption
	ph := pg.MakeAConstIntNode(placeholder, -1)
	if old != nil {
		ph = &pg.Node{Node: &pg.Node_MinMaxExpr{MinMaxExpr: &pg.MinMaxExpr{Op: pg.MinMaxOp_IS_LEAST, Args: []*pg.Node{old, ph}, Location: -1}}}
	} else {
		sel.LimitOption = pg.LimitOption_LIMIT_OPTION_COUNT
	}
	sel.LimitCount = ph
	out, err := pg.Deparse(&pg.ParseResult{Version: parserVersion, Stmts: []*pg.RawStmt{{Stmt: raw.Stmt}}})
	sel.LimitCount = saved
	sel.LimitOption = savedOpt
	if err != nil {
		return limitPlan{}
	}
	key := strconv.Itoa(placeholder)
	i := strings.Index(out, key)
	if i < 0 || strings.Count(out, key) != 1 {
		return limitPlan{}
	}
	return limitPlan{kind: limitTemplate, prefix: out[:i], suffix: out[i+len(key):]}
}

// singleAggregateRow reports a SELECT whose result is one aggregate row
// (aggregates in the target list, no GROUP BY, no set operation): a limit
// can never bind there, so it is left alone.
func singleAggregateRow(sel *pg.SelectStmt) bool {
	if sel.Op != pg.SetOperation_SETOP_NONE || len(sel.GroupClause) > 0 || len(sel.ValuesLists) > 0 || len(sel.TargetList) == 0 {
		return false
	}
	agg := false
	for _, t := range sel.TargetList {
		rt := t.GetResTarget()
		if rt == nil {
			return false
		}
		switch hasAggregate(rt.Val, 0) {
		case aggYes:
			agg = true
		case aggSetReturning:
			return false
		}
	}
	return agg
}

type aggFound uint8

const (
	aggNo aggFound = iota
	aggYes
	aggSetReturning
)

// hasAggregate looks for an aggregate call in an expression without
// descending into subqueries (their aggregates do not make the outer query
// aggregate).
func hasAggregate(n *pg.Node, depth int) aggFound {
	if n == nil || depth > 100 {
		return aggNo
	}
	found := aggNo
	merge := func(f aggFound) {
		if f > found {
			found = f
		}
	}
	switch x := n.Node.(type) {
	case *pg.Node_FuncCall:
		fc := x.FuncCall
		if fc.Over == nil {
			names := stringList(fc.Funcname)
			name := ""
			if len(names) > 0 {
				name = names[len(names)-1]
			}
			if fc.AggStar || fc.AggDistinct || len(fc.AggOrder) > 0 || fc.AggFilter != nil || fc.AggWithinGroup || aggregateNames[name] {
				merge(aggYes)
			} else if setReturning[name] {
				return aggSetReturning
			}
		}
		for _, a := range fc.Args {
			merge(hasAggregate(a, depth+1))
		}
	case *pg.Node_AExpr:
		merge(hasAggregate(x.AExpr.Lexpr, depth+1))
		merge(hasAggregate(x.AExpr.Rexpr, depth+1))
	case *pg.Node_TypeCast:
		merge(hasAggregate(x.TypeCast.Arg, depth+1))
	case *pg.Node_CoalesceExpr:
		for _, a := range x.CoalesceExpr.Args {
			merge(hasAggregate(a, depth+1))
		}
	case *pg.Node_BoolExpr:
		for _, a := range x.BoolExpr.Args {
			merge(hasAggregate(a, depth+1))
		}
	case *pg.Node_CaseExpr:
		for _, a := range x.CaseExpr.Args {
			if w := a.GetCaseWhen(); w != nil {
				merge(hasAggregate(w.Expr, depth+1))
				merge(hasAggregate(w.Result, depth+1))
			}
		}
		merge(hasAggregate(x.CaseExpr.Defresult, depth+1))
	case *pg.Node_MinMaxExpr:
		for _, a := range x.MinMaxExpr.Args {
			merge(hasAggregate(a, depth+1))
		}
	case *pg.Node_NullTest:
		merge(hasAggregate(x.NullTest.Arg, depth+1))
	}
	return found
}

// aggregateNames are the built-in aggregates (Postgres docs, "Aggregate
// Functions") that can be called without any aggregate-only syntax.
var aggregateNames = map[string]bool{
	"count": true, "sum": true, "avg": true, "min": true, "max": true,
	"array_agg": true, "string_agg": true, "json_agg": true, "jsonb_agg": true,
	"json_object_agg": true, "jsonb_object_agg": true, "json_agg_strict": true, "jsonb_agg_strict": true,
	"json_objectagg": true, "json_arrayagg": true, "xmlagg": true,
	"bool_and": true, "bool_or": true, "every": true, "bit_and": true, "bit_or": true, "bit_xor": true,
	"stddev": true, "stddev_pop": true, "stddev_samp": true, "variance": true, "var_pop": true, "var_samp": true,
	"corr": true, "covar_pop": true, "covar_samp": true, "regr_avgx": true, "regr_avgy": true, "regr_count": true,
	"regr_intercept": true, "regr_r2": true, "regr_slope": true, "regr_sxx": true, "regr_sxy": true, "regr_syy": true,
	"range_agg": true, "range_intersect_agg": true, "any_value": true,
}

// setReturning are common set-returning functions: next to an aggregate they
// make more than one row.
var setReturning = map[string]bool{
	"generate_series": true, "unnest": true, "jsonb_array_elements": true, "json_array_elements": true,
	"jsonb_each": true, "json_each": true, "regexp_matches": true, "generate_subscripts": true,
	"jsonb_object_keys": true, "json_object_keys": true, "string_to_table": true, "regexp_split_to_table": true,
}
