package auth

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// DefaultAuthQuery is PgBouncer's default auth_query.
const DefaultAuthQuery = "SELECT usename, passwd FROM pg_shadow WHERE usename = $1"

// defaultAuthQueryCacheSize bounds the cache when MaxEntries is unset.
const defaultAuthQueryCacheSize = 10000

// AuthQuery looks secrets up in the database, like PgBouncer's auth_query,
// so users need not be listed in Sluice's config. Results, found or not,
// are cached for TTL: a login storm must not become a query storm, and a
// password change takes up to TTL to be seen. One connection serves all
// lookups, one at a time; it is dialed on first use and again after any
// error. The zero TTL disables caching. Call Close when done.
type AuthQuery struct {
	// Query takes the user name as $1 and returns (name, password) rows;
	// the first row's second column is used. "" means DefaultAuthQuery.
	Query string
	// Dial opens the lookup connection, usually as a dedicated role allowed
	// to read pg_shadow (or a SECURITY DEFINER function).
	Dial func(ctx context.Context) (*pgconn.PgConn, error)
	// TTL is how long a result stays cached.
	TTL time.Duration
	// MaxEntries bounds the cache; 0 means 10000. When full, expired entries
	// go first, then the oldest.
	MaxEntries int

	connMu sync.Mutex // serializes use of conn and dialing
	conn   *pgconn.PgConn

	cacheMu sync.Mutex
	cache   map[string]cachedSecret
	closed  bool
}

type cachedSecret struct {
	secret  Secret
	found   bool
	expires time.Time
}

// errAuthQueryClosed is returned by Lookup after Close.
var errAuthQueryClosed = errors.New("auth_query: closed")

// Lookup returns user's secret. found=false means no such user or a NULL
// (or empty) password: PostgreSQL treats a role without a password like a
// missing one, and Authenticate then runs the mock exchange. An error means
// the lookup itself failed; the caller should refuse the login without
// revealing why (PgBouncer answers "bouncer config error").
func (q *AuthQuery) Lookup(ctx context.Context, user string) (Secret, bool, error) {
	if s, found, ok := q.cached(user); ok {
		if found {
			authQueryLookups.WithLabelValues("hit").Inc()
		} else {
			authQueryLookups.WithLabelValues("negative_hit").Inc()
		}
		return s, found, nil
	}

	q.connMu.Lock()
	defer q.connMu.Unlock()
	if q.isClosed() {
		return Secret{}, false, errAuthQueryClosed
	}
	// Another caller may have filled the entry while we waited.
	if s, found, ok := q.cached(user); ok {
		authQueryLookups.WithLabelValues("hit").Inc()
		return s, found, nil
	}
	passwd, found, err := q.query(ctx, user)
	if err != nil {
		authQueryLookups.WithLabelValues("error").Inc()
		return Secret{}, false, err
	}
	authQueryLookups.WithLabelValues("miss").Inc()
	var secret Secret
	if found {
		if secret, err = ParseSecret(user, passwd); err != nil {
			// A verifier we cannot read: fail this login, loudly, but do
			// not cache, so fixing the row takes effect at once.
			return Secret{}, false, fmt.Errorf("auth_query: password of user %q: %w", user, err)
		}
	}
	q.store(user, secret, found)
	return secret, found, nil
}

// query runs the lookup on the shared connection, dialing it if needed and
// retrying once on a fresh connection when a reused one turns out broken
// (the server restarted or dropped it while idle).
func (q *AuthQuery) query(ctx context.Context, user string) (string, bool, error) {
	for attempt := 0; ; attempt++ {
		reused := q.conn != nil
		if q.conn == nil {
			if q.Dial == nil {
				return "", false, errors.New("auth_query: no Dial function")
			}
			conn, err := q.Dial(ctx)
			if err != nil {
				return "", false, fmt.Errorf("auth_query: connect: %w", err)
			}
			q.conn = conn
		}
		passwd, found, err := q.exec(ctx, user)
		if err == nil {
			return passwd, found, nil
		}
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || q.conn.IsClosed() {
			// Not an SQL error: the connection is suspect, drop it.
			q.conn.Close(context.Background())
			q.conn = nil
			if reused && attempt == 0 && ctx.Err() == nil {
				continue
			}
		}
		return "", false, fmt.Errorf("auth_query: %w", err)
	}
}

func (q *AuthQuery) exec(ctx context.Context, user string) (string, bool, error) {
	sql := q.Query
	if sql == "" {
		sql = DefaultAuthQuery
	}
	rr := q.conn.ExecParams(ctx, sql, [][]byte{[]byte(user)}, nil, nil, nil)
	var passwd []byte
	rows := 0
	for rr.NextRow() {
		if rows == 0 && len(rr.Values()) >= 2 {
			passwd = append([]byte(nil), rr.Values()[1]...)
		}
		rows++
	}
	cols := len(rr.FieldDescriptions()) // valid until Close
	if _, err := rr.Close(); err != nil {
		return "", false, err
	}
	if cols < 2 {
		return "", false, fmt.Errorf("query returns %d columns, want 2 (name, password)", cols)
	}
	if len(passwd) == 0 { // no row, NULL or empty: no usable password
		return "", false, nil
	}
	return string(passwd), true, nil
}

func (q *AuthQuery) isClosed() bool {
	q.cacheMu.Lock()
	defer q.cacheMu.Unlock()
	return q.closed
}

func (q *AuthQuery) cached(user string) (Secret, bool, bool) {
	q.cacheMu.Lock()
	defer q.cacheMu.Unlock()
	e, ok := q.cache[user]
	if !ok || time.Now().After(e.expires) {
		return Secret{}, false, false
	}
	return e.secret, e.found, true
}

func (q *AuthQuery) store(user string, s Secret, found bool) {
	if q.TTL <= 0 {
		return
	}
	q.cacheMu.Lock()
	defer q.cacheMu.Unlock()
	if q.closed {
		return
	}
	if q.cache == nil {
		q.cache = make(map[string]cachedSecret)
	}
	limit := q.MaxEntries
	if limit <= 0 {
		limit = defaultAuthQueryCacheSize
	}
	if _, ok := q.cache[user]; !ok && len(q.cache) >= limit {
		q.evictLocked(limit)
	}
	q.cache[user] = cachedSecret{secret: s, found: found, expires: time.Now().Add(q.TTL)}
}

// evictLocked makes room for one entry: expired entries go first, then the
// oldest. The scan is linear but only runs on a miss with a full cache.
func (q *AuthQuery) evictLocked(limit int) {
	now := time.Now()
	for k, e := range q.cache {
		if now.After(e.expires) {
			delete(q.cache, k)
		}
	}
	for len(q.cache) >= limit {
		var oldest string
		var at time.Time
		for k, e := range q.cache {
			if at.IsZero() || e.expires.Before(at) {
				oldest, at = k, e.expires
			}
		}
		delete(q.cache, oldest)
	}
}

// Invalidate drops every cached result, e.g. on SIGHUP or after an admin
// changed passwords.
func (q *AuthQuery) Invalidate() {
	q.cacheMu.Lock()
	q.cache = nil
	q.cacheMu.Unlock()
}

// Close closes the lookup connection and empties the cache. Lookups after
// Close fail.
func (q *AuthQuery) Close() error {
	q.cacheMu.Lock()
	q.cache, q.closed = nil, true
	q.cacheMu.Unlock()
	q.connMu.Lock()
	defer q.connMu.Unlock()
	if q.conn == nil {
		return nil
	}
	err := q.conn.Close(context.Background())
	q.conn = nil
	return err
}
