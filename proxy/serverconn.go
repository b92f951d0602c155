package proxy

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// serverState is where a server connection is; pools move it in one place.
type serverState int32

const (
	serverIdle    serverState = iota // in the pool
	serverActive                     // linked to a client
	serverTesting                    // health check or reset in progress
)

func (s serverState) String() string {
	return [...]string{"idle", "active", "testing"}[s]
}

var serverIDs atomic.Uint64

// serverConn is one PostgreSQL backend taken over from pgconn for relaying.
type serverConn struct {
	id     uint64
	pool   *pool
	conn   net.Conn
	fr     *frameReader
	pid    uint32
	secret []byte
	addr   string // host:port, for cancel requests

	state    atomic.Int32
	since    atomic.Int64 // unix nanos of the last state change
	txStatus atomic.Uint32
	created  time.Time
	lastUsed time.Time // set at checkin, read under the pool lock

	// reported are the server's current ParameterStatus values; applied are
	// the client settings Sluice set on it (keys lower case). Only the
	// goroutine that holds the server touches them.
	reported map[string]string
	applied  map[string]string
	// appliedGen is the settingsGen version of the client settings that
	// applied equals, 0 when unknown (params.go).
	appliedGen uint64

	stmts serverStatements // prepared statements Sluice made on it
	// unnamedBy/unnamedSeq say whose unnamed statement the server holds.
	unnamedBy, unnamedSeq uint64

	wbuf []byte

	// links hands the server's relay goroutine (relayLoop) the client it
	// serves next; one goroutine per server for its whole life, so a
	// transaction costs no goroutine start and no stack growth.
	links    chan *session
	stopOnce sync.Once
	// resume is the state of a request an inline relay handed over
	// (inline.go); deadline says an inline relay left a read deadline set.
	resume     relayVars
	deadline   bool
	deadlineAt time.Time
}

// relayLoop runs pump for each client linked to the server until the
// server closes.
func (sc *serverConn) relayLoop() {
	for s := range sc.links {
		sc.pumpSafe(s)
	}
}

// pumpSafe runs one client's pump until the server is released or the
// relay is stopped; a panic there ends only this server (its client then
// sees the server fail), never the process.
func (sc *serverConn) pumpSafe(s *session) {
	defer s.pumps.Done()
	defer func() {
		if r := recover(); r != nil {
			panicsTotal.Inc()
			s.log.Error().Interface("panic", r).Msg("BUG: relay panicked")
			sc.conn.Close()
		}
	}()
	v := sc.resume
	sc.resume = relayVars{}
	s.pump(sc, v, false)
}

// link starts relaying sc's replies to s; the caller holds sc exclusively
// (checked out). The channel has room for one link: the pump of the
// previous client may still be returning from its checkin.
func (sc *serverConn) link(s *session) {
	if sc.deadline {
		sc.conn.SetReadDeadline(time.Time{})
		sc.deadline = false
	}
	s.pumps.Add(1)
	sc.links <- s
}

// dialServer opens a backend with pgconn (TLS, SCRAM/md5/password) and
// hijacks its socket.
func dialServer(ctx context.Context, t target, maxMsg int) (*serverConn, error) {
	cfg, err := pgconn.ParseConfig(t.connString())
	if err != nil {
		return nil, err
	}
	pc, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	hc, err := pc.Hijack()
	if err != nil {
		pc.Close(ctx)
		return nil, err
	}
	conn := newRawConn(hc.Conn)
	sc := &serverConn{
		id:       serverIDs.Add(1),
		conn:     conn,
		fr:       newFrameReader(conn, 32<<10, maxMsg),
		pid:      hc.PID,
		secret:   hc.SecretKey,
		addr:     net.JoinHostPort(t.host, fmt.Sprint(t.port)),
		created:  time.Now(),
		reported: map[string]string{},
		applied:  map[string]string{},
		links:    make(chan *session, 1),
	}
	for k, v := range hc.ParameterStatuses {
		sc.reported[strings.ToLower(k)] = v
	}
	sc.txStatus.Store(uint32(hc.TxStatus))
	sc.setState(serverIdle)
	go sc.relayLoop()
	return sc, nil
}

// appliedChanged records a change of applied made outside settingsQuery.
func (sc *serverConn) appliedChanged() { sc.appliedGen = 0 }

func (sc *serverConn) setState(s serverState) { sc.setStateAt(s, time.Now()) }

// setStateAt is setState with the time already read.
func (sc *serverConn) setStateAt(s serverState, t time.Time) {
	sc.state.Store(int32(s))
	sc.since.Store(t.UnixNano())
}

// close closes the socket and ends the relay goroutine. Only a server no
// client holds is closed, so no link races with it.
func (sc *serverConn) close() {
	sc.conn.Close()
	sc.stopOnce.Do(func() { close(sc.links) })
}

// roundTrip sends a simple Query and reads up to ReadyForQuery, outside any
// client's stream (health checks, resets, settings). It returns the
// server's error, if any, and records ParameterStatus changes.
func (sc *serverConn) roundTrip(sql string, timeout time.Duration) error {
	sc.conn.SetDeadline(time.Now().Add(timeout))
	defer sc.conn.SetDeadline(time.Time{})
	sc.deadline = false // the inline relay's is replaced, then cleared
	sc.wbuf = appendQuery(sc.wbuf[:0], sql)
	if _, err := sc.conn.Write(sc.wbuf); err != nil {
		return err
	}
	var firstErr error
	for {
		typ, frame, err := sc.fr.next()
		if err != nil {
			return err
		}
		switch typ {
		case 'E':
			if firstErr == nil {
				firstErr = parseServerError(body(frame))
			}
		case 'S':
			sc.noteParameter(body(frame))
		case 'Z':
			sc.txStatus.Store(uint32(body(frame)[0]))
			return firstErr
		}
	}
}

// noteParameter records a ParameterStatus body; it returns the lower-case
// name and value.
func (sc *serverConn) noteParameter(b []byte) (string, string) {
	k, rest, ok := cstring(b)
	if !ok {
		return "", ""
	}
	v, _, _ := cstring(rest)
	k = strings.ToLower(k)
	sc.reported[k] = v
	return k, v
}

// cancel asks PostgreSQL to cancel whatever this backend is running.
func (sc *serverConn) cancel(timeout time.Duration) error {
	c, err := net.DialTimeout("tcp", sc.addr, timeout)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	buf := make([]byte, 12, 12+len(sc.secret))
	binary.BigEndian.PutUint32(buf[0:], uint32(12+len(sc.secret)))
	binary.BigEndian.PutUint32(buf[4:], cancelRequestCode)
	binary.BigEndian.PutUint32(buf[8:], sc.pid)
	buf = append(buf, sc.secret...)
	_, err = c.Write(buf)
	if err == nil {
		// PostgreSQL closes the connection when done; wait for that briefly
		// so the cancel is delivered before we move on.
		var one [1]byte
		c.Read(one[:])
	}
	return err
}

func appendQuery(dst []byte, sql string) []byte {
	dst = append(dst, 'Q', 0, 0, 0, 0)
	dst = append(dst, sql...)
	dst = append(dst, 0)
	binary.BigEndian.PutUint32(dst[len(dst)-len(sql)-5:], uint32(len(sql)+5))
	return dst
}

// parseServerError decodes an ErrorResponse body into a pgError.
func parseServerError(b []byte) *pgError {
	e := &pgError{Severity: "ERROR"}
	for len(b) > 0 && b[0] != 0 {
		t := b[0]
		v, rest, ok := cstring(b[1:])
		if !ok {
			break
		}
		b = rest
		switch t {
		case 'S':
			e.Severity = v
		case 'V':
			e.Severity = v
		case 'C':
			e.Code = v
		case 'M':
			e.Message = v
		case 'D':
			e.Detail = v
		case 'H':
			e.Hint = v
		}
	}
	return e
}

// target is where a pool's servers live and who they log in as.
type target struct {
	host, dbname, user, password, sslmode string
	port                                  int
	connectTimeout                        time.Duration
}

func (t target) connString() string {
	q := func(s string) string {
		return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
	}
	sslmode := t.sslmode
	if sslmode == "" {
		sslmode = "prefer"
	}
	secs := int(t.connectTimeout / time.Second)
	if secs < 1 {
		secs = 1
	}
	return fmt.Sprintf("host=%s port=%d dbname=%s user=%s password=%s sslmode=%s connect_timeout=%d",
		q(t.host), t.port, q(t.dbname), q(t.user), q(t.password), sslmode, secs)
}

// dialPgconn opens a plain pgconn to t (auth_query and other side channels).
func (t target) dialPgconn(ctx context.Context) (*pgconn.PgConn, error) {
	cfg, err := pgconn.ParseConfig(t.connString())
	if err != nil {
		return nil, err
	}
	return pgconn.ConnectConfig(ctx, cfg)
}

// show reads one setting with SHOW, outside any client's stream.
func (sc *serverConn) show(name string, timeout time.Duration) (string, error) {
	sc.conn.SetDeadline(time.Now().Add(timeout))
	defer sc.conn.SetDeadline(time.Time{})
	sc.deadline = false // the inline relay's is replaced, then cleared
	sc.wbuf = appendQuery(sc.wbuf[:0], "SHOW "+quoteIdent(name))
	if _, err := sc.conn.Write(sc.wbuf); err != nil {
		return "", err
	}
	var val string
	var firstErr error
	for {
		typ, frame, err := sc.fr.next()
		if err != nil {
			return "", err
		}
		switch typ {
		case 'D':
			b := body(frame)
			if len(b) >= 6 {
				n := int(int32(binary.BigEndian.Uint32(b[2:6])))
				if n >= 0 && 6+n <= len(b) {
					val = string(b[6 : 6+n])
				}
			}
		case 'E':
			if firstErr == nil {
				firstErr = parseServerError(body(frame))
			}
		case 'Z':
			sc.txStatus.Store(uint32(body(frame)[0]))
			return val, firstErr
		}
	}
}
