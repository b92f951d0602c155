package resultcache

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// replicator runs one logical replication follower per database the cache
// is used for, started lazily by the first Check. While a database's
// follower is not streaming, Check refuses its statements
// (replication_not_ready): a write made directly on PostgreSQL then could
// go unseen.
type replicator struct {
	c   *Cache
	mu  sync.Mutex
	dbs map[string]*follower
	wg  sync.WaitGroup
	log logEvery
}

type follower struct {
	db    string
	ready atomic.Bool
}

func newReplicator(c *Cache) *replicator {
	r := &replicator{c: c, dbs: make(map[string]*follower)}
	r.log.every = 10 * time.Second
	return r
}

// ready starts db's follower if needed and reports whether it streams.
func (r *replicator) ready(db string) bool {
	r.mu.Lock()
	f := r.dbs[db]
	if f == nil {
		if r.c.closed.Load() {
			r.mu.Unlock()
			return false
		}
		f = &follower{db: db}
		r.dbs[db] = f
		r.wg.Add(1)
		go r.run(f)
	}
	r.mu.Unlock()
	return f.ready.Load()
}

// ReplicationReady reports whether the follower of db streams (starting it
// if needed). Always true without invalidation.logical_replication.
func (c *Cache) ReplicationReady(db string) bool {
	return c.repl == nil || c.repl.ready(db)
}

// close waits for the followers; the cache's context is already canceled.
func (r *replicator) close() { r.wg.Wait() }

func (r *replicator) run(f *follower) {
	defer r.wg.Done()
	ctx := r.c.ctx
	backoff := 200 * time.Millisecond
	for ctx.Err() == nil {
		started := time.Now()
		err := r.stream(ctx, f)
		f.ready.Store(false)
		metricReplicationLag.WithLabelValues(f.db).Set(0)
		if ctx.Err() != nil {
			return
		}
		if r.log.ok() {
			r.c.log.Warn().Err(err).Str("database", f.db).Msg("replication follower stopped, retrying; caching of the database paused")
		}
		if time.Since(started) > 10*time.Second {
			backoff = 200 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// stream creates a temporary slot, invalidates the whole database (writes
// before the slot's consistent point were not seen), then follows pgoutput
// and bumps the relations of every committed transaction.
func (r *replicator) stream(ctx context.Context, f *follower) error {
	cfg := r.c.cfg.Invalidation
	conn, err := r.c.deps.DialReplication(ctx, f.db)
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	defer conn.Close(context.Background())
	if err := ensurePublication(ctx, conn, cfg.Publication); err != nil {
		return err
	}
	slot := cfg.SlotName + "_" + strconv.FormatUint(randUint64(), 16)
	res, err := pglogrepl.CreateReplicationSlot(ctx, conn, slot, "pgoutput",
		pglogrepl.CreateReplicationSlotOptions{Temporary: true, Mode: pglogrepl.LogicalReplication, SnapshotAction: "NOEXPORT_SNAPSHOT"})
	if err != nil {
		return fmt.Errorf("create slot: %w", err)
	}
	start, err := pglogrepl.ParseLSN(res.ConsistentPoint)
	if err != nil {
		return fmt.Errorf("slot lsn: %w", err)
	}
	err = pglogrepl.StartReplication(ctx, conn, slot, start, pglogrepl.StartReplicationOptions{
		PluginArgs: []string{"proto_version '1'", "publication_names '" + cfg.Publication + "'"},
	})
	if err != nil {
		return fmt.Errorf("start replication: %w", err)
	}
	r.c.bump(ctx, f.db, nil, true, "replication")
	f.ready.Store(true)
	metricReplicationLag.WithLabelValues(f.db).Set(1)

	pos := start
	nextStatus := time.Now().Add(cfg.StatusInterval)
	var pending []RelID
	seen := make(map[RelID]bool)
	for {
		if time.Now().After(nextStatus) {
			if err := pglogrepl.SendStandbyStatusUpdate(ctx, conn, pglogrepl.StandbyStatusUpdate{WALWritePosition: pos}); err != nil {
				return fmt.Errorf("status update: %w", err)
			}
			nextStatus = time.Now().Add(cfg.StatusInterval)
		}
		rctx, cancel := context.WithDeadline(ctx, nextStatus)
		raw, err := conn.ReceiveMessage(rctx)
		cancel()
		if err != nil {
			if pgconn.Timeout(err) && ctx.Err() == nil {
				continue
			}
			return fmt.Errorf("receive: %w", err)
		}
		switch m := raw.(type) {
		case *pgproto3.ErrorResponse:
			return pgconn.ErrorResponseToPgError(m)
		case *pgproto3.CopyData:
			if len(m.Data) == 0 {
				continue
			}
			switch m.Data[0] {
			case pglogrepl.PrimaryKeepaliveMessageByteID:
				ka, err := pglogrepl.ParsePrimaryKeepaliveMessage(m.Data[1:])
				if err != nil {
					return err
				}
				if ka.ServerWALEnd > pos {
					pos = ka.ServerWALEnd
				}
				if ka.ReplyRequested {
					nextStatus = time.Time{}
				}
			case pglogrepl.XLogDataByteID:
				xld, err := pglogrepl.ParseXLogData(m.Data[1:])
				if err != nil {
					return err
				}
				lm, err := pglogrepl.Parse(xld.WALData)
				if err != nil {
					return err
				}
				switch lm := lm.(type) {
				case *pglogrepl.BeginMessage:
					pending = pending[:0]
					clear(seen)
				case *pglogrepl.InsertMessage:
					pending = addRel(pending, seen, RelID(lm.RelationID))
				case *pglogrepl.UpdateMessage:
					pending = addRel(pending, seen, RelID(lm.RelationID))
				case *pglogrepl.DeleteMessage:
					pending = addRel(pending, seen, RelID(lm.RelationID))
				case *pglogrepl.TruncateMessage:
					for _, id := range lm.RelationIDs {
						pending = addRel(pending, seen, RelID(id))
					}
				case *pglogrepl.CommitMessage:
					if len(pending) > 0 {
						r.c.bump(ctx, f.db, pending, false, "replication")
						pending = make([]RelID, 0, 4)
						clear(seen)
					}
				}
				if end := xld.WALStart + pglogrepl.LSN(len(xld.WALData)); end > pos {
					pos = end
				}
			}
		}
	}
}

func addRel(p []RelID, seen map[RelID]bool, id RelID) []RelID {
	if seen[id] {
		return p
	}
	seen[id] = true
	return append(p, id)
}

// ensurePublication creates the publication FOR ALL TABLES if missing;
// that takes superuser (PostgreSQL 15). With an existing publication the
// replication role only needs REPLICATION and CONNECT.
func ensurePublication(ctx context.Context, conn *pgconn.PgConn, name string) error {
	res, err := conn.Exec(ctx, "select 1 from pg_publication where pubname = '"+name+"'").ReadAll()
	if err != nil {
		return fmt.Errorf("publication lookup: %w", err)
	}
	if len(res) == 1 && len(res[0].Rows) == 1 {
		return nil
	}
	_, err = conn.Exec(ctx, "create publication "+name+" for all tables").ReadAll()
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42710" { // duplicate_object: another instance won
		return nil
	}
	if err != nil {
		return fmt.Errorf("create publication %s: %w", name, err)
	}
	return nil
}
