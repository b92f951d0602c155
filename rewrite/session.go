package rewrite

import "net/netip"

// Session holds the facts about the client session that rules can match.
// ClientAddr is the zero Addr for Unix-socket clients (no client_addr rule
// matches them).
type Session struct {
	Database, User, ApplicationName string
	ClientAddr                      netip.Addr
}
