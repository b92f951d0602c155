package monitor

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// readShape is what index advice needs from a statement: the tables it
// reads (alias -> schema-qualified name parts), the columns it filters or
// joins on, and how many $n parameters it takes.
type readShape struct {
	tables  map[string][2]string // alias or relname -> {schema, relname}
	columns []colRef             // from WHERE and JOIN ... ON
	params  int
}

type colRef struct{ qualifier, column string }

var errNotRead = errors.New("not a plain read")

// parseRead accepts exactly one SELECT without INTO and without
// data-modifying CTEs; anything else is not explained.
func parseRead(sql string) (*readShape, error) {
	js, err := pg_query.ParseToJSON(sql)
	if err != nil {
		return nil, err
	}
	var tree struct {
		Stmts []struct {
			Stmt map[string]any `json:"stmt"`
		} `json:"stmts"`
	}
	if err := json.Unmarshal([]byte(js), &tree); err != nil {
		return nil, err
	}
	if len(tree.Stmts) != 1 {
		return nil, errNotRead
	}
	sel, ok := tree.Stmts[0].Stmt["SelectStmt"].(map[string]any)
	if !ok || sel["intoClause"] != nil {
		return nil, errNotRead
	}
	for _, w := range []string{`"InsertStmt"`, `"UpdateStmt"`, `"DeleteStmt"`, `"MergeStmt"`, `"lockingClause"`, `"intoClause"`} {
		if strings.Contains(js, w) {
			return nil, errNotRead
		}
	}
	sh := &readShape{tables: map[string][2]string{}}
	walk(sel, false, sh)
	return sh, nil
}

// walk visits the tree; inFilter is true below a WHERE or JOIN quals.
func walk(n any, inFilter bool, sh *readShape) {
	switch v := n.(type) {
	case []any:
		for _, e := range v {
			walk(e, inFilter, sh)
		}
	case map[string]any:
		if rv, ok := v["RangeVar"].(map[string]any); ok {
			schema, _ := rv["schemaname"].(string)
			rel, _ := rv["relname"].(string)
			name := rel
			if al, ok := rv["alias"].(map[string]any); ok {
				if a, ok := al["aliasname"].(string); ok {
					name = a
				}
			}
			sh.tables[name] = [2]string{schema, rel}
			return
		}
		if pr, ok := v["ParamRef"].(map[string]any); ok {
			if num, ok := pr["number"].(float64); ok && int(num) > sh.params {
				sh.params = int(num)
			}
			return
		}
		if cr, ok := v["ColumnRef"].(map[string]any); ok {
			if inFilter {
				if c, ok := columnRef(cr); ok {
					sh.columns = append(sh.columns, c)
				}
			}
			return
		}
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys) // deterministic order of columns
		for _, k := range keys {
			switch k {
			case "SelectStmt": // a subquery's own select list is no filter
				walk(v[k], false, sh)
			default:
				walk(v[k], inFilter || k == "whereClause" || k == "quals", sh)
			}
		}
	}
}

func columnRef(cr map[string]any) (colRef, bool) {
	fields, _ := cr["fields"].([]any)
	var parts []string
	for _, f := range fields {
		m, _ := f.(map[string]any)
		s, ok := m["String"].(map[string]any)
		if !ok {
			return colRef{}, false // A_Star
		}
		sv, _ := s["sval"].(string)
		parts = append(parts, sv)
	}
	switch len(parts) {
	case 1:
		return colRef{column: parts[0]}, true
	case 2:
		return colRef{qualifier: parts[0], column: parts[1]}, true
	case 3:
		return colRef{qualifier: parts[1], column: parts[2]}, true
	}
	return colRef{}, false
}
