package proxy

import (
	"fmt"
	"strings"

	"github.com/sluice-proxy/sluice/rewrite"
)

// Session state in transaction mode. A server serves many clients in turn,
// so what a client changes beyond its transaction must either travel with
// the client or keep the server for it:
//   - SET/RESET (search_path, statement_timeout, SET ROLE, ...) are carried:
//     once the transaction that ran them commits, they join the client's
//     wanted settings and are applied (set_config) on whichever server
//     serves it next; the server it ran on is known to have them.
//   - SQL PREPARE/DEALLOCATE in a simple Query are carried like protocol
//     statements (sqlprepare.go); in a Parse they are not.
//   - LISTEN, temporary objects, WITH HOLD cursors, session advisory locks,
//     SQL PREPARE sent with Parse and LOAD can't be carried: per
//     pool.on_session_state the client is pinned to its server until it
//     disconnects ("pin", the default) or the statement is refused with
//     0A000 ("error").

// pinningKinds are the state changes that tie a client to its server.
var pinningKinds = map[string]string{
	rewrite.StateListen:       "LISTEN",
	rewrite.StateTempObject:   "temporary objects",
	rewrite.StateHoldCursor:   "WITH HOLD cursors",
	rewrite.StateAdvisoryLock: "session advisory locks",
	rewrite.StatePrepare:      "SQL PREPARE",
	rewrite.StateLoad:         "LOAD",
}

// hasState reports whether d changes session state.
func hasState(d *rewrite.Decision) bool {
	for _, st := range d.Statements {
		if len(st.SessionState) > 0 || st.TempObjects {
			return true
		}
	}
	return false
}

// sessionStateCheck runs before a statement with session effects is sent
// in transaction mode: it pins the client or returns the error to raise.
// carried says SQL PREPARE/DEALLOCATE in d follow the client (planSQL).
func (s *session) sessionStateCheck(d *rewrite.Decision, carried bool) *pgError {
	if s.mode != "transaction" || s.pinned {
		return nil
	}
	for _, st := range d.Statements {
		for _, ch := range st.SessionState {
			if carried && (ch.Kind == rewrite.StatePrepare || ch.Kind == rewrite.StateDeallocate) {
				continue
			}
			what, ok := pinningKinds[ch.Kind]
			if !ok && ch.Kind == rewrite.StateSet && ch.Name == "*" {
				what, ok = "set_config with a computed name", true
			}
			if !ok {
				continue
			}
			if s.pool.settings.Load().onSessionState == "error" {
				return &pgError{Severity: "ERROR", Code: codeFeatureNotSupported, Message: fmt.Sprintf(
					"sluice: %s cannot be used in transaction pooling mode", what),
					Hint: "Use a session-mode pool, or set pool.on_session_state: pin."}
			}
			s.pinned = true
			pinnedTotal.Inc()
			s.log.Info().Str("reason", what).Msg("client pinned to its server")
			return nil
		}
	}
	return nil
}

// noteStateChanges records, at a request's ReadyForQuery, the settings its
// statements changed; they take effect for the client when the
// transaction ends without failing. The caller holds s.mu.
func (s *session) noteStateChanges(sc *serverConn, decs []*rewrite.Decision, failed bool, status byte) {
	if !failed {
		for _, d := range decs {
			for _, st := range d.Statements {
				if st.TxControl == "rollback" {
					s.pendingSets = s.pendingSets[:0]
					s.txFailed = false
					continue
				}
				for _, ch := range st.SessionState {
					if ch.Kind == rewrite.StateSet && !ch.Local && ch.Name != "*" {
						s.pendingSets = append(s.pendingSets, ch)
					}
					if ch.Kind == rewrite.StateDiscard && strings.EqualFold(ch.Name, "all") {
						s.pendingSets = append(s.pendingSets, rewrite.StateChange{Kind: rewrite.StateSet, Name: "all", IsReset: true})
					}
				}
			}
		}
	} else {
		s.txFailed = true
	}
	if status == 'E' {
		s.txFailed = true
	}
	if status != 'I' {
		return
	}
	if !s.txFailed {
		for _, ch := range s.pendingSets {
			s.applySet(sc, ch)
		}
	}
	s.pendingSets = s.pendingSets[:0]
	s.txFailed = false
}

// applySet makes one committed SET/RESET part of the client's settings;
// sc ran it, so it already has it.
func (s *session) applySet(sc *serverConn, ch rewrite.StateChange) {
	s.wantedChanged()
	sc.appliedChanged()
	name := strings.ToLower(ch.Name)
	if name == "all" && ch.IsReset {
		clear(s.wanted)
		for k, v := range s.startup {
			s.wanted[k] = v
		}
		clear(sc.applied)
		return
	}
	if ch.IsReset {
		if v, ok := s.startup[name]; ok {
			s.wanted[name] = v
		} else {
			delete(s.wanted, name)
		}
		delete(sc.applied, name)
		return
	}
	s.wanted[name] = ch.Value
	sc.applied[name] = ch.Value
}
