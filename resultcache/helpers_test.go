package resultcache

import (
	"context"
	"fmt"
	"net"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/rs/zerolog"
	"github.com/sluice-proxy/sluice/internal/testenv"
)

func newTestCache(t testing.TB, mutate func(*Config), deps Deps) *Cache {
	t.Helper()
	cfg := DefaultConfig()
	if mutate != nil {
		mutate(&cfg)
	}
	c, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func req(key string, db string, rels ...RelID) *Request {
	return &Request{Key: MakeKey(&KeyInput{Database: db, SQL: key}), Database: db, Rels: rels, Fingerprint: 1}
}

// pgDeps dials the test PostgreSQL as the superuser.
func pgDeps(t testing.TB) Deps {
	pg := testenv.PG(t)
	return Deps{
		Dial: func(ctx context.Context, db string) (*pgconn.PgConn, error) {
			return pgconn.Connect(ctx, pg.DSN(db))
		},
		DialReplication: func(ctx context.Context, db string) (*pgconn.PgConn, error) {
			return pgconn.Connect(ctx, pg.DSN(db)+"&replication=database")
		},
		Logger: zerolog.Nop(),
	}
}

// freePort finds a free TCP port on 127.0.0.1 (listen on 0, close, reuse).
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// uniquePrefix isolates tests that share the test Redis.
func uniquePrefix(t testing.TB) string {
	return fmt.Sprintf("sluicetest%x", randUint64())
}

// isHit looks up and gives back any fill ticket, as the proxy must.
func isHit(c *Cache, r *Request) bool {
	res := c.Lookup(ctx, r)
	if res.Fill != nil {
		res.Fill.Abandon()
	}
	return res.Hit()
}
