package proxy

import (
	"sort"
	"strings"
	"sync/atomic"
)

// settingsGen numbers the versions of clients' wanted settings process-wide
// (from 1), so a server can say in one word which version it carries: the
// check before each statement is then one comparison, not a walk over two
// maps. Every change of a session's wanted map takes a new number
// (session.wantedChanged); every change of a server's applied map that is
// not settingsQuery's own forgets the server's number (serverConn.appliedChanged).
var settingsGen atomic.Uint64

// carriedSetting lists the settings PostgreSQL reports with ParameterStatus
// that a client may change and that must follow it from server to server in
// transaction mode (keys lower case). search_path is reported from
// PostgreSQL 18 on; before that only its startup value is carried.
var carriedSetting = map[string]bool{
	"application_name":              true,
	"client_encoding":               true,
	"datestyle":                     true,
	"intervalstyle":                 true,
	"timezone":                      true,
	"standard_conforming_strings":   true,
	"search_path":                   true,
	"default_transaction_read_only": true,
}

// settingsQuery returns the SQL that makes sc's settings equal to what
// client s wants, or "" when they already match (the common case, which
// costs no allocation). set_config takes values exactly as a startup packet
// gives them (lists such as search_path included); settings the client
// does not want any more are RESET to the server's defaults.
func settingsQuery(sc *serverConn, s *session) string {
	if sc.appliedGen != 0 && sc.appliedGen == s.wantedGen {
		return ""
	}
	sc.appliedGen = s.wantedGen
	return settingsDiff(sc, s.wanted)
}

// settingsDiff is settingsQuery without the version check.
func settingsDiff(sc *serverConn, wanted map[string]string) string {
	diff := false
	for k, v := range wanted {
		if cur, ok := sc.applied[k]; !ok || cur != v {
			diff = true
			break
		}
	}
	if !diff {
		for k := range sc.applied {
			if _, ok := wanted[k]; !ok {
				diff = true
				break
			}
		}
	}
	if !diff {
		return ""
	}
	keys := make([]string, 0, len(wanted))
	for k := range wanted {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	if len(keys) > 0 {
		b.WriteString("SELECT ")
		for i, k := range keys {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString("pg_catalog.set_config(")
			b.WriteString(quoteLiteral(k))
			b.WriteString(", ")
			b.WriteString(quoteLiteral(wanted[k]))
			b.WriteString(", false)")
		}
	}
	var reset []string
	for k := range sc.applied {
		if _, ok := wanted[k]; !ok {
			reset = append(reset, k)
		}
	}
	sort.Strings(reset)
	for _, k := range reset {
		if b.Len() > 0 {
			b.WriteString("; ")
		}
		b.WriteString("RESET ")
		b.WriteString(quoteIdent(k))
		delete(sc.applied, k)
	}
	for _, k := range keys {
		sc.applied[k] = wanted[k]
	}
	return b.String()
}

// quoteLiteral quotes s as a standard-conforming SQL string literal.
func quoteLiteral(s string) string {
	if strings.ContainsRune(s, '\\') {
		return "E'" + strings.NewReplacer(`\`, `\\`, `'`, `''`).Replace(s) + "'"
	}
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

func quoteIdent(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}
