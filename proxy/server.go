package proxy

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/rs/zerolog"

	"github.com/sluice-proxy/sluice/monitor"
	"github.com/sluice-proxy/sluice/proxy/auth"
	"github.com/sluice-proxy/sluice/resultcache"
	"github.com/sluice-proxy/sluice/rewrite"
)

// snapshot is one immutable view of the configuration; a request reads the
// snapshot current when it began, so a reload never tears one in half.
type snapshot struct {
	proxy     Config
	method    auth.Method
	tls       *tls.Config
	users     map[string]userEntry
	authQuery *auth.AuthQuery
	dbs       map[string]DatabaseConfig
	rewrite   *rewrite.Engine    // nil: no analysis or rules
	cache     *resultcache.Cache // nil: no result cache
}

type userEntry struct {
	secret         auth.Secret
	serverPassword string
}

// Server accepts clients and owns the pools.
type Server struct {
	log      zerolog.Logger
	cfg      atomic.Pointer[snapshot]
	recorder monitor.Recorder

	ln       net.Listener
	draining atomic.Bool
	clients  atomic.Int64 // logged-in clients, for max_client_conn

	poolsMu sync.Mutex
	pools   map[poolKey]*pool

	sessions sync.Map // id -> *session
	cancels  sync.Map // pid -> *session
	ids      atomic.Uint64

	stmtNames sync.Map // Parse body -> server-side statement name
	stmtSeq   atomic.Uint64
	stmtCount atomic.Int64
	wg        sync.WaitGroup
	stop      chan struct{}
}

// New builds a server from a validated config.
func New(cfg Config, log zerolog.Logger) (*Server, error) {
	s := &Server{log: log, pools: map[poolKey]*pool{}, stop: make(chan struct{})}
	snap, err := buildSnapshot(cfg)
	if err != nil {
		return nil, err
	}
	s.cfg.Store(snap)
	return s, nil
}

// SetRecorder installs the observer of finished requests and pool waits
// (monitor/), before Serve.
func (s *Server) SetRecorder(r monitor.Recorder) { s.recorder = r }

func (s *Server) snapshot() *snapshot { return s.cfg.Load() }

func buildSnapshot(cfg Config) (*snapshot, error) {
	method, err := auth.ParseMethod(cfg.Auth.Method)
	if err != nil {
		return nil, err
	}
	snap := &snapshot{proxy: cfg, method: method, users: map[string]userEntry{}, dbs: map[string]DatabaseConfig{}}
	if cfg.Auth.MockSecret != "" {
		auth.SetMockSecret([]byte(cfg.Auth.MockSecret))
	}
	for _, u := range cfg.Auth.Users {
		sec, err := auth.ParseSecret(u.Name, u.Password)
		if err != nil {
			return nil, fmt.Errorf("auth.users %q: %w", u.Name, err)
		}
		snap.users[u.Name] = userEntry{secret: sec, serverPassword: u.ServerPassword}
	}
	for _, d := range cfg.Databases {
		snap.dbs[d.Name] = d
	}
	if cfg.TLS.Mode != "disable" {
		cert, err := tls.LoadX509KeyPair(cfg.TLS.CertFile, cfg.TLS.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls.cert_file: %w", err)
		}
		snap.tls = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	if aq := cfg.Auth.AuthQuery; aq.User != "" {
		var dbc DatabaseConfig
		for _, d := range cfg.Databases {
			if d.Name == aq.Database || (aq.Database == "" && dbc.Host == "") || d.Name == "*" && dbc.Host == "" {
				dbc = d
			}
		}
		dbname := aq.Database
		if dbname == "" {
			dbname = "postgres"
		}
		t := target{host: dbc.Host, port: portOr(dbc.Port), dbname: dbname, user: aq.User, password: aq.Password,
			sslmode: dbc.SSLMode, connectTimeout: cfg.Pool.ServerConnectTimeout}
		snap.authQuery = &auth.AuthQuery{Query: aq.Query, TTL: aq.CacheTTL, Dial: t.dialPgconn}
	}
	return snap, nil
}

func portOr(p int) int {
	if p == 0 {
		return 5432
	}
	return p
}

// Listen binds the client address; Addr then reports it (port 0 allowed).
func (s *Server) Listen() error {
	ln, err := net.Listen("tcp", s.snapshot().proxy.Listen)
	if err != nil {
		return err
	}
	s.ln = ln
	return nil
}

// Addr is the bound client address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Serve accepts clients until Shutdown.
func (s *Server) Serve() error {
	s.wg.Add(1)
	go s.maintain()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if s.draining.Load() {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return err
		}
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetNoDelay(true)
		}
		s.startSession(c)
	}
}

func (s *Server) startSession(c net.Conn) {
	cfg := s.snapshot()
	rw := newRawConn(c) // TLS, when negotiated, replaces it in login
	sess := &session{
		srv:  s,
		id:   s.ids.Add(1),
		conn: c,
		raw:  c,
		addr: c.RemoteAddr().String(),
		fr:   newClientFrameReader(rw, cfg.proxy.MaxMessageSize),
		cw:   newClientWriter(rw),

		cancelWait: make(chan struct{}, 1),
	}
	sess.log = s.log.With().Uint64("client", sess.id).Str("addr", sess.addr).Logger()
	sess.wait.onWait = func() { sess.setState(clientWaiting) }
	sess.setState(clientLogin)
	s.sessions.Store(sess.id, sess)
	clientsGauge.Inc()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		sess.serve()
	}()
}

// forget drops a finished session from the registries.
func (s *Server) forget(sess *session) {
	if sess.pid != 0 {
		s.cancels.Delete(sess.pid)
	}
	if sess.loggedIn {
		s.clients.Add(-1)
	}
	s.sessions.Delete(sess.id)
	clientsGauge.Dec()
}

// register gives a session its own BackendKeyData, unique among clients.
// The key is set before the session is published in s.cancels, so a
// CancelRequest that finds it (another goroutine) reads a written key.
func (s *Server) register(sess *session) {
	for {
		sess.pid, sess.secret = newBackendKey()
		if _, loaded := s.cancels.LoadOrStore(sess.pid, sess); !loaded {
			return
		}
	}
}

// cancel forwards a CancelRequest carrying our key to the server currently
// serving that client. A wrong key does nothing, as in PostgreSQL.
func (s *Server) cancel(pid uint32, key []byte) {
	v, ok := s.cancels.Load(pid)
	if !ok {
		return
	}
	sess := v.(*session)
	if len(key) != 4 || subtle.ConstantTimeCompare(key, sess.secret[:]) != 1 {
		return
	}
	sess.mu.Lock()
	sc := sess.server
	busy := sess.outstanding > 0
	sess.mu.Unlock()
	if st := clientState(sess.state.Load()); !busy && (st == clientWaiting || st == clientActive) {
		// The request is still on its way to a server (rewrite, cache,
		// pool): it is dropped before it is sent.
		select {
		case sess.cancelWait <- struct{}{}:
		default:
		}
		cancelsTotal.Inc()
		return
	}
	if sc == nil || !busy {
		return
	}
	cancelsTotal.Inc()
	if err := sc.cancel(s.snapshot().proxy.Pool.ServerConnectTimeout); err != nil {
		s.log.Warn().Err(err).Msg("forwarding cancel failed")
	}
}

// lookupUser finds a client's secret in the config, else via auth_query.
func (s *Server) lookupUser(ctx context.Context, cfg *snapshot, user string) (auth.Secret, bool, error) {
	if u, ok := cfg.users[user]; ok {
		return u.secret, true, nil
	}
	if cfg.authQuery != nil {
		return cfg.authQuery.Lookup(ctx, user)
	}
	return auth.Secret{}, false, nil
}

// poolFor returns the pool for (db, user), creating it on first use.
func (s *Server) poolFor(db, user string, cfg *snapshot) (*pool, error) {
	key := poolKey{db, user}
	s.poolsMu.Lock()
	defer s.poolsMu.Unlock()
	if p, ok := s.pools[key]; ok {
		return p, nil
	}
	ps, err := cfg.poolSettings(db, user)
	if err != nil {
		return nil, err
	}
	p := newPool(key, ps)
	if rec := s.recorder; rec != nil {
		p.onWait = func(d time.Duration) { rec.PoolWait(db, user, d) }
	}
	s.pools[key] = p
	return p, nil
}

// poolSettings resolves the database entry and server credentials of a
// pool. A database that is not configured gets PostgreSQL's own error.
func (cfg *snapshot) poolSettings(db, user string) (*poolSettings, error) {
	d, ok := cfg.dbs[db]
	if !ok {
		d, ok = cfg.dbs["*"]
		if !ok {
			return nil, fatal(codeInvalidCatalogName, fmt.Sprintf("database %q does not exist", db))
		}
		d.DBName = db
	}
	if d.DBName == "" {
		d.DBName = db
	}
	p := cfg.proxy.Pool
	t := target{host: d.Host, port: portOr(d.Port), dbname: d.DBName, sslmode: d.SSLMode, connectTimeout: p.ServerConnectTimeout}
	switch {
	case d.User != "":
		t.user, t.password = d.User, d.Password
	default:
		t.user = user
		if u, ok := cfg.users[user]; ok {
			if u.serverPassword != "" {
				t.password = u.serverPassword
			} else if pw, ok := u.secret.Plaintext(); ok {
				t.password = pw
			}
		}
	}
	ps := &poolSettings{
		target: t, mode: p.Mode, size: p.DefaultPoolSize, minSize: p.MinPoolSize,
		idleTimeout: p.ServerIdleTimeout, lifetime: p.ServerLifetime, waitTimeout: p.QueryWaitTimeout,
		resetQuery: p.ServerResetQuery, checkDelay: p.ServerCheckDelay, checkQuery: p.ServerCheckQuery,
		maxMessageSize: cfg.proxy.MaxMessageSize, maxPrepared: p.MaxPreparedStatements, onSessionState: p.OnSessionState,
	}
	if d.PoolMode != "" {
		ps.mode = d.PoolMode
	}
	if d.PoolSize > 0 {
		ps.size = d.PoolSize
	}
	if d.MinPool > 0 {
		ps.minSize = d.MinPool
	}
	if ps.minSize > ps.size {
		ps.minSize = ps.size
	}
	return ps, nil
}

// Reload swaps in a new config: new logins and checkouts use it, pools
// resize, and requests in flight finish on the snapshot they started with.
// The listen address does not change without a restart.
func (s *Server) Reload(cfg Config) error {
	snap, err := buildSnapshot(cfg)
	if err != nil {
		return err
	}
	old := s.cfg.Load()
	snap.rewrite = old.rewrite
	snap.cache = old.cache
	s.cfg.Store(snap)
	if old.authQuery != nil {
		old.authQuery.Close()
	}
	s.poolsMu.Lock()
	for key, p := range s.pools {
		ps, err := snap.poolSettings(key.db, key.user)
		if err != nil {
			// The database is gone from the config: close the pool; its
			// clients get an error at their next request.
			p.close()
			delete(s.pools, key)
			continue
		}
		p.settings.Store(ps)
	}
	s.poolsMu.Unlock()
	s.log.Info().Msg("config reloaded")
	return nil
}

// maintain runs the pools' janitor once a second.
func (s *Server) maintain() {
	defer s.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		s.poolsMu.Lock()
		pools := make([]*pool, 0, len(s.pools))
		for _, p := range s.pools {
			pools = append(pools, p)
		}
		s.poolsMu.Unlock()
		for _, p := range pools {
			p.maintain(context.Background())
		}
	}
}

// Shutdown stops accepting, lets transactions in flight finish until ctx
// ends, then closes every client and server.
func (s *Server) Shutdown(ctx context.Context) error {
	if !s.draining.CompareAndSwap(false, true) {
		return nil
	}
	if s.ln != nil {
		s.ln.Close()
	}
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		busy := 0
		s.sessions.Range(func(_, v any) bool {
			if !v.(*session).closeIfIdle() {
				busy++
			}
			return true
		})
		if busy == 0 {
			break
		}
		select {
		case <-ctx.Done():
			s.sessions.Range(func(_, v any) bool {
				sess := v.(*session)
				if clientState(sess.state.Load()) != clientLogin {
					sess.disconnect(fatal(codeAdminShutdown, "terminating connection due to administrator command"))
				}
				sess.raw.Close()
				return true
			})
			busy = 0
		case <-t.C:
			continue
		}
		break
	}
	close(s.stop)
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
	s.poolsMu.Lock()
	for _, p := range s.pools {
		p.close()
	}
	s.poolsMu.Unlock()
	return nil
}

// closeIfIdle ends a session with no transaction in flight, telling the
// client why; it reports whether the session is gone or going.
func (sess *session) closeIfIdle() bool {
	if clientState(sess.state.Load()) == clientLogin {
		// Still logging in: it ends with its login timeout or at the
		// shutdown deadline.
		return false
	}
	sess.mu.Lock()
	busy := sess.outstanding > 0 || sess.unsynced
	if sc := sess.server; sc != nil && sc.txStatus.Load() != 'I' {
		busy = true
	}
	sess.mu.Unlock()
	if busy {
		return false
	}
	sess.disconnect(fatal(codeAdminShutdown, "terminating connection due to administrator command"))
	sess.raw.Close()
	return true
}

// ShutdownTimeout is the current shutdown_timeout.
func (s *Server) ShutdownTimeout() time.Duration { return s.snapshot().proxy.ShutdownTimeout }

// SetRewriter installs the rule engine (nil: none) for requests from now
// on; a reload builds a new engine and calls it again.
func (s *Server) SetRewriter(e *rewrite.Engine) {
	for {
		old := s.cfg.Load()
		next := *old
		next.rewrite = e
		if s.cfg.CompareAndSwap(old, &next) {
			return
		}
	}
}

// SetCache installs the result cache (nil: none).
func (s *Server) SetCache(c *resultcache.Cache) {
	for {
		old := s.cfg.Load()
		next := *old
		next.cache = c
		if s.cfg.CompareAndSwap(old, &next) {
			return
		}
	}
}

// DialDatabase opens a plain connection to a database with the server
// credentials of a pool already serving it (the result cache reads
// catalogs through it; monitoring reads statistics).
func (s *Server) DialDatabase(ctx context.Context, db string) (*pgconn.PgConn, error) {
	t, err := s.targetFor(db)
	if err != nil {
		return nil, err
	}
	return t.dialPgconn(ctx)
}

// DialReplication opens a logical replication connection to db.
func (s *Server) DialReplication(ctx context.Context, db string) (*pgconn.PgConn, error) {
	t, err := s.targetFor(db)
	if err != nil {
		return nil, err
	}
	cfg, err := pgconn.ParseConfig(t.connString() + " replication=database")
	if err != nil {
		return nil, err
	}
	return pgconn.ConnectConfig(ctx, cfg)
}

// targetFor finds server credentials for db: an open pool's, else the
// database entry's forced user.
func (s *Server) targetFor(db string) (target, error) {
	s.poolsMu.Lock()
	for key, p := range s.pools {
		if key.db == db {
			s.poolsMu.Unlock()
			return p.settings.Load().target, nil
		}
	}
	s.poolsMu.Unlock()
	ps, err := s.snapshot().poolSettings(db, "")
	if err != nil {
		return target{}, err
	}
	if ps.target.user == "" {
		return target{}, fmt.Errorf("no server credentials known yet for database %q", db)
	}
	return ps.target, nil
}
