package rewrite

import (
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"
)

// classify sets Kind, TxControl and the statement-level session-state facts
// of st from the top-level node, and reports whether relations named bare in
// it are DDL targets (written).
func classify(n *pg.Node, st *Statement) (ddl bool) {
	switch x := n.Node.(type) {
	case *pg.Node_SelectStmt:
		st.Kind = "select"
		if x.SelectStmt.IntoClause != nil {
			st.Kind = "create_table_as"
			if x.SelectStmt.IntoClause.Rel.GetRelpersistence() == "t" {
				st.addTemp(x.SelectStmt.IntoClause.Rel)
			}
		} else if len(x.SelectStmt.ValuesLists) > 0 {
			st.Kind = "values"
		}
	case *pg.Node_InsertStmt:
		st.Kind = "insert"
	case *pg.Node_UpdateStmt:
		st.Kind = "update"
	case *pg.Node_DeleteStmt:
		st.Kind = "delete"
	case *pg.Node_MergeStmt:
		st.Kind = "merge"
	case *pg.Node_CopyStmt:
		st.Kind = "copy_to"
		if x.CopyStmt.IsFrom {
			st.Kind = "copy_from"
		}
	case *pg.Node_TruncateStmt:
		st.Kind = "truncate"
		return true
	case *pg.Node_RefreshMatViewStmt:
		st.Kind = "refresh_matview"
		return true
	case *pg.Node_CreateTableAsStmt:
		st.Kind = "create_table_as"
		if x.CreateTableAsStmt.Into != nil && x.CreateTableAsStmt.Into.Rel.GetRelpersistence() == "t" {
			st.addTemp(x.CreateTableAsStmt.Into.Rel)
		}
	case *pg.Node_TransactionStmt:
		txControl(x.TransactionStmt, st)
	case *pg.Node_VariableSetStmt:
		variableSet(x.VariableSetStmt, st)
	case *pg.Node_VariableShowStmt:
		st.Kind = "show"
	case *pg.Node_DiscardStmt:
		st.Kind = "discard"
		mode := strings.ToLower(strings.TrimPrefix(x.DiscardStmt.Target.String(), "DISCARD_"))
		st.SessionState = append(st.SessionState, StateChange{Kind: StateDiscard, Name: mode})
	case *pg.Node_PrepareStmt:
		st.Kind = "prepare"
		st.SessionState = append(st.SessionState, StateChange{Kind: StatePrepare, Name: x.PrepareStmt.Name})
	case *pg.Node_ExecuteStmt:
		st.Kind = "execute"
	case *pg.Node_DeallocateStmt:
		st.Kind = "deallocate"
		name := x.DeallocateStmt.Name
		if x.DeallocateStmt.Isall || name == "" {
			name = "all"
		}
		st.SessionState = append(st.SessionState, StateChange{Kind: StateDeallocate, Name: name})
	case *pg.Node_ListenStmt:
		st.Kind = "listen"
		st.SessionState = append(st.SessionState, StateChange{Kind: StateListen, Name: x.ListenStmt.Conditionname})
	case *pg.Node_UnlistenStmt:
		st.Kind = "unlisten"
		name := x.UnlistenStmt.Conditionname
		if name == "" {
			name = "*"
		}
		st.SessionState = append(st.SessionState, StateChange{Kind: StateUnlisten, Name: name})
	case *pg.Node_NotifyStmt:
		st.Kind = "notify"
	case *pg.Node_CallStmt:
		st.Kind = "call"
	case *pg.Node_DoStmt:
		st.Kind = "do"
	case *pg.Node_ExplainStmt:
		st.Kind = "explain"
	case *pg.Node_DeclareCursorStmt:
		st.Kind = "declare"
		// CURSOR_OPT_HOLD in parsenodes.h: the cursor survives COMMIT.
		const cursorOptHold = 0x0020
		if x.DeclareCursorStmt.Options&cursorOptHold != 0 {
			st.SessionState = append(st.SessionState, StateChange{Kind: StateHoldCursor, Name: x.DeclareCursorStmt.Portalname})
		}
	case *pg.Node_FetchStmt:
		st.Kind = "fetch"
	case *pg.Node_ClosePortalStmt:
		st.Kind = "close"
	case *pg.Node_LockStmt:
		st.Kind = "lock"
	case *pg.Node_VacuumStmt:
		st.Kind = "vacuum"
	case *pg.Node_LoadStmt:
		st.Kind = "load"
		st.SessionState = append(st.SessionState, StateChange{Kind: StateLoad, Name: x.LoadStmt.Filename})
	case *pg.Node_CreateStmt:
		st.Kind = "ddl"
		if x.CreateStmt.Relation.GetRelpersistence() == "t" {
			st.addTemp(x.CreateStmt.Relation)
		}
		return true
	case *pg.Node_ViewStmt:
		st.Kind = "ddl"
		if x.ViewStmt.View.GetRelpersistence() == "t" {
			st.addTemp(x.ViewStmt.View)
		}
		return true
	case *pg.Node_CreateSeqStmt:
		st.Kind = "ddl"
		if x.CreateSeqStmt.Sequence.GetRelpersistence() == "t" {
			st.addTemp(x.CreateSeqStmt.Sequence)
		}
		return true
	default:
		st.Kind = "other"
		if isDDLNode(n) {
			st.Kind = "ddl"
			return true
		}
	}
	return false
}

func (st *Statement) addTemp(rv *pg.RangeVar) {
	st.TempObjects = true
	st.SessionState = append(st.SessionState, StateChange{Kind: StateTempObject, Name: Relation{Schema: rv.Schemaname, Name: rv.Relname}.String()})
}

// isDDLNode recognizes the utility statements that define or change schema
// objects or privileges by their node name, so new node types from a newer
// parser are classified without a code change.
func isDDLNode(n *pg.Node) bool {
	name := string(n.ProtoReflect().WhichOneof(n.ProtoReflect().Descriptor().Oneofs().Get(0)).Message().Name())
	for _, p := range []string{"Create", "Alter", "Drop", "Rename", "Grant", "Comment", "Index", "Define", "Composite", "Reindex", "Cluster", "SecLabel", "ImportForeign", "RuleStmt", "Reassign"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

func txControl(x *pg.TransactionStmt, st *Statement) {
	switch x.Kind {
	case pg.TransactionStmtKind_TRANS_STMT_BEGIN, pg.TransactionStmtKind_TRANS_STMT_START:
		st.Kind, st.TxControl = "begin", "begin"
	case pg.TransactionStmtKind_TRANS_STMT_COMMIT:
		st.Kind, st.TxControl = "commit", "commit"
	case pg.TransactionStmtKind_TRANS_STMT_ROLLBACK:
		st.Kind, st.TxControl = "rollback", "rollback"
	case pg.TransactionStmtKind_TRANS_STMT_SAVEPOINT:
		st.Kind, st.TxControl = "savepoint", "savepoint"
	case pg.TransactionStmtKind_TRANS_STMT_RELEASE:
		st.Kind, st.TxControl = "savepoint", "release"
	case pg.TransactionStmtKind_TRANS_STMT_ROLLBACK_TO:
		st.Kind, st.TxControl = "savepoint", "rollback_to"
	case pg.TransactionStmtKind_TRANS_STMT_PREPARE:
		st.Kind, st.TxControl = "transaction", "prepare_transaction"
	case pg.TransactionStmtKind_TRANS_STMT_COMMIT_PREPARED:
		st.Kind, st.TxControl = "transaction", "commit_prepared"
	case pg.TransactionStmtKind_TRANS_STMT_ROLLBACK_PREPARED:
		st.Kind, st.TxControl = "transaction", "rollback_prepared"
	default:
		st.Kind = "other"
	}
}

// variableSet handles SET/RESET in all their grammar forms (gram.y's
// VariableSetStmt): SET TRANSACTION and SET SESSION CHARACTERISTICS are
// VAR_SET_MULTI with a "transaction..." name; SET ROLE and SET SESSION
// AUTHORIZATION are plain settings named role and session_authorization.
func variableSet(x *pg.VariableSetStmt, st *Statement) {
	st.Kind = "set"
	switch x.Kind {
	case pg.VariableSetKind_VAR_SET_MULTI:
		if x.Name == "TRANSACTION" || x.Name == "TRANSACTION SNAPSHOT" {
			st.TxControl = "set_transaction"
			return
		}
		// SET SESSION CHARACTERISTICS AS TRANSACTION ...: session default
		// for later transactions.
		st.SessionState = append(st.SessionState, StateChange{Kind: StateSet, Name: "default_transaction_characteristics"})
	case pg.VariableSetKind_VAR_RESET:
		st.Kind = "reset"
		st.SessionState = append(st.SessionState, StateChange{Kind: StateSet, Name: x.Name, IsReset: true})
	case pg.VariableSetKind_VAR_RESET_ALL:
		st.Kind = "reset"
		st.SessionState = append(st.SessionState, StateChange{Kind: StateSet, Name: "all", IsReset: true})
	case pg.VariableSetKind_VAR_SET_DEFAULT:
		st.SessionState = append(st.SessionState, StateChange{Kind: StateSet, Name: x.Name, Local: x.IsLocal, IsReset: true})
	case pg.VariableSetKind_VAR_SET_CURRENT:
		st.SessionState = append(st.SessionState, StateChange{Kind: StateSet, Name: x.Name, Local: x.IsLocal, Value: "FROM CURRENT"})
	default:
		vals := make([]string, 0, len(x.Args))
		for _, a := range x.Args {
			if s, ok := constString(a); ok {
				vals = append(vals, s)
			}
		}
		st.SessionState = append(st.SessionState, StateChange{Kind: StateSet, Name: x.Name, Value: strings.Join(vals, ", "), Local: x.IsLocal})
	}
}

// readOnly decides Statement.ReadOnly after the walk: the statement writes
// no relation, locks no rows, and is of a kind Postgres would accept in a
// READ ONLY transaction.
func readOnly(n *pg.Node, st *Statement) bool {
	if len(st.Writes) > 0 || st.Locking {
		return false
	}
	switch st.Kind {
	case "select", "values", "show", "begin", "commit", "rollback", "savepoint", "set", "reset",
		"discard", "deallocate", "listen", "unlisten", "fetch", "close":
		return true
	case "explain":
		// EXPLAIN ANALYZE runs the statement; the walk already put any
		// written relation in Writes.
		return true
	case "declare", "prepare":
		return true
	}
	return false
}
