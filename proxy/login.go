package proxy

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"time"

	"github.com/sluice-proxy/sluice/proxy/auth"
	"github.com/sluice-proxy/sluice/rewrite"
)

// errClientGone ends a session whose client hung up: nothing to tell it.
var errClientGone = errors.New("client disconnected")

// errCancelHandled ends a connection that only carried a CancelRequest.
var errCancelHandled = errors.New("cancel request handled")

// login runs the startup phase under client_login_timeout: TLS and GSS
// negotiation, the startup packet, authentication, then the server side
// (pool, settings) and the reply PostgreSQL would give.
func (s *session) login() error {
	cfg := s.srv.snapshot()
	deadline := time.Now().Add(cfg.proxy.ClientLoginTimeout)
	s.conn.SetDeadline(deadline)
	sp, err := s.readStartup(cfg)
	if err != nil {
		if isTimeout(err) {
			return fatal(codeQueryCanceled, "canceling authentication due to timeout")
		}
		return err
	}
	if sp.code == cancelRequestCode {
		s.srv.cancel(sp.cancelPID, sp.cancelKey)
		return errCancelHandled
	}
	s.user = sp.params["user"]
	s.db = sp.params["database"]
	if s.db == "" {
		s.db = s.user
	}
	s.app = sp.params["application_name"]
	s.log = s.log.With().Str("user", s.user).Str("db", s.db).Logger()
	if _, ok := sp.params["replication"]; ok && sp.params["replication"] != "false" && sp.params["replication"] != "0" {
		return fatal(codeFeatureNotSupported, "sluice: replication connections are not supported")
	}
	wanted, err := sp.sessionParams()
	if err != nil {
		return err
	}
	s.wanted = wanted
	s.wantedChanged()
	s.startup = make(map[string]string, len(wanted))
	for k, v := range wanted {
		s.startup[k] = v
	}
	s.stmts = map[string]*prepared{}
	s.stmtDec = map[string]stmtFacts{}
	s.parseFrames = map[string][]byte{}
	s.portals = map[string]*rewrite.Decision{}
	s.rsess = s.rewriteSession()

	var out []byte
	if sp.minor() > protocolMinor || len(sp.unknownOptions) > 0 {
		out = appendNegotiateProtocolVersion(out, sp.unknownOptions)
		if _, err := s.conn.Write(out); err != nil {
			return err
		}
		out = out[:0]
	}
	if err := s.authenticate(cfg); err != nil {
		if isTimeout(err) {
			return fatal(codeQueryCanceled, "canceling authentication due to timeout")
		}
		return err
	}
	if s.srv.clients.Add(1) > int64(cfg.proxy.MaxClientConn) {
		s.srv.clients.Add(-1)
		return fatal(codeTooManyConnections, "sorry, too many clients already")
	}
	s.loggedIn = true

	p, err := s.srv.poolFor(s.db, s.user, cfg)
	if err != nil {
		return err
	}
	s.pool = p
	s.mode = p.settings.Load().mode
	s.setState(clientWaiting)
	if s.mode == "transaction" {
		// A saturated pool must not hold logins up: with the pool's
		// parameters known, the client's settings are applied with its
		// first statement instead.
		if params := p.knownParams(); params != nil && p.busy() {
			return s.finishLogin(out, params, nil)
		}
	}
	sc, err := p.checkout(s.ctx())
	if err != nil {
		return err
	}
	if q := settingsQuery(sc, s); q != "" {
		if err := sc.roundTrip(q, cfg.proxy.ClientLoginTimeout); err != nil {
			// The settings are the client's own (e.g. an unknown GUC in
			// the startup packet): PostgreSQL refuses the login with the
			// same error.
			clear(sc.applied)
			sc.appliedChanged()
			if sc.txStatus.Load() == 'I' {
				sc.roundTrip("RESET ALL", cfg.proxy.ClientLoginTimeout)
				p.checkin(sc)
			} else {
				p.discard(sc)
			}
			return err
		}
		for k := range s.wanted {
			if v, ok := sc.reported[k]; ok && carriedSetting[k] {
				s.wanted[k] = v
				sc.applied[k] = v
			}
		}
		// Both maps moved together: sc carries the new version.
		s.wantedChanged()
		sc.appliedGen = s.wantedGen
	}
	return s.finishLogin(out, sc.reported, sc)
}

// finishLogin sends AuthenticationOk, the parameters, our BackendKeyData
// and ReadyForQuery; sc (nil when the login went without a server) is
// given back or, in session mode, linked.
func (s *session) finishLogin(out []byte, params map[string]string, sc *serverConn) error {
	p := s.pool
	out = append(out, 'R', 0, 0, 0, 8, 0, 0, 0, 0) // AuthenticationOk
	for k, v := range params {
		if want, ok := s.wanted[k]; ok && sc == nil && carriedSetting[k] {
			v = want
		}
		out = appendParameterStatus(out, canonicalName(k), v)
	}
	s.srv.register(s)
	out = append(out, 'K', 0, 0, 0, 12)
	out = binary.BigEndian.AppendUint32(out, s.pid)
	out = append(out, s.secret[:]...)
	out = appendReady(out, 'I')
	s.conn.SetDeadline(time.Time{})
	if _, err := s.conn.Write(out); err != nil {
		if sc != nil {
			p.checkin(sc)
		}
		return err
	}
	s.setState(clientIdle)
	s.log.Info().Str("mode", s.mode).Msg("client logged in")
	if s.mode == "transaction" {
		if sc != nil {
			p.checkin(sc)
		}
		return nil
	}
	s.mu.Lock()
	s.server = sc
	sc.link(s)
	s.mu.Unlock()
	return nil
}

// readStartup handles SSLRequest and GSSENCRequest until a StartupMessage
// or CancelRequest arrives.
func (s *session) readStartup(cfg *snapshot) (*startupPacket, error) {
	tlsDone := false
	for {
		sp, err := readStartupPacket(s.fr)
		if err != nil {
			return nil, err
		}
		switch sp.code {
		case sslRequestCode:
			if tlsDone {
				return nil, fatal(codeProtocolViolation, "SSL negotiation already done")
			}
			if s.fr.buffered() > 0 {
				// Bytes sent before the TLS handshake could be injected by a
				// man in the middle (CVE-2021-23214): refuse like PostgreSQL.
				return nil, fatal(codeProtocolViolation, "received unencrypted data after SSL request")
			}
			if cfg.tls == nil {
				if _, err := s.conn.Write([]byte{'N'}); err != nil {
					return nil, err
				}
				continue
			}
			if _, err := s.conn.Write([]byte{'S'}); err != nil {
				return nil, err
			}
			tc := tls.Server(s.conn, cfg.tls)
			if err := tc.Handshake(); err != nil {
				return nil, err
			}
			s.conn = tc
			s.fr = newFrameReader(tc, clientReadBuffer, cfg.proxy.MaxMessageSize)
			s.cw.Reset(tc)
			tlsDone = true
		case gssEncRequestCode:
			if _, err := s.conn.Write([]byte{'N'}); err != nil {
				return nil, err
			}
		case cancelRequestCode:
			return sp, nil
		default:
			if cfg.proxy.TLS.Mode == "require" && !tlsDone {
				return nil, fatal(codeInvalidAuthorization, "sluice: SSL connection is required (tls.mode: require)")
			}
			return sp, nil
		}
	}
}

// authenticate runs the client auth exchange for the configured method.
func (s *session) authenticate(cfg *snapshot) error {
	if cfg.method == auth.MethodTrust {
		return nil
	}
	secret, found, err := s.srv.lookupUser(s.ctx(), cfg, s.user)
	if err != nil {
		s.log.Warn().Err(err).Msg("auth_query failed")
		found = false
	}
	be := &authConn{s: s}
	if err := auth.Authenticate(be, cfg.method, s.user, secret, found); err != nil {
		if errors.Is(err, auth.ErrDisconnected) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return errClientGone
		}
		var ae *auth.Error
		if errors.As(err, &ae) {
			if ae.LogDetail != "" {
				s.log.Info().Str("detail", ae.LogDetail).Msg("authentication failed")
			}
			return &pgError{Severity: "FATAL", Code: ae.Code, Message: ae.Message, Detail: ae.Detail}
		}
		return err
	}
	// The exchange may leave its last message (SASLFinal) buffered.
	return be.Flush()
}

// canonicalName gives back PostgreSQL's spelling of a reported setting.
func canonicalName(k string) string {
	switch k {
	case "datestyle":
		return "DateStyle"
	case "intervalstyle":
		return "IntervalStyle"
	case "timezone":
		return "TimeZone"
	}
	return k
}

// newBackendKey draws our own BackendKeyData for a client.
func newBackendKey() (uint32, [4]byte) {
	var b [8]byte
	rand.Read(b[:])
	pid := binary.BigEndian.Uint32(b[:4]) & 0x7fffffff
	if pid == 0 {
		pid = 1
	}
	var key [4]byte
	copy(key[:], b[4:])
	return pid, key
}
