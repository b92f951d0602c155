package resultcache

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"time"

	"github.com/redis/go-redis/v9"
)

// Invalidation messages on <prefix>:inv, binary:
//
//	u64 sender | kind | str db | u64 fingerprint | u64 seq | uvarint n | n × uvarint oid
//
// In write edges (msgWriteBegin, msgWriteEnd) the fingerprint field carries
// the write's id on its sender (marks.go); seq 0 is a replayed edge, not
// acknowledged.
const (
	msgRels        byte = 'r' // bump relations of db
	msgDatabase    byte = 'd' // bump the whole database
	msgFingerprint byte = 'f' // drop L1 entries of a fingerprint (db "" = all)
	msgAll         byte = 'a' // drop everything
	msgWriteBegin  byte = 'b' // a write began: bump ids and hold fills (dbRel = whole database)
	msgWriteEnd    byte = 'e' // a write ended: bump ids and release
	msgAck         byte = 'k' // an instance applied write edge seq of instance fp
)

func (c *Cache) encodeMsg(kind byte, db string, fp uint64, ids []RelID) []byte {
	return c.encodeMsgSeq(kind, db, fp, 0, ids)
}

// encodeMsgSeq adds a sequence number: write edges are acknowledged by
// every other instance (msgAck, fp = the writer's id, seq = the edge's).
func (c *Cache) encodeMsgSeq(kind byte, db string, fp, seq uint64, ids []RelID) []byte {
	b := make([]byte, 0, 40+len(db)+5*len(ids))
	b = binary.BigEndian.AppendUint64(b, c.id)
	b = append(b, kind)
	b = appendStr(b, db)
	b = binary.BigEndian.AppendUint64(b, fp)
	b = binary.BigEndian.AppendUint64(b, seq)
	b = binary.AppendUvarint(b, uint64(len(ids)))
	for _, id := range ids {
		b = binary.AppendUvarint(b, uint64(id))
	}
	return b
}

type invMsg struct {
	sender uint64
	kind   byte
	db     string
	fp     uint64
	seq    uint64
	ids    []RelID
}

var errBadMsg = errors.New("resultcache: malformed invalidation message")

func decodeMsg(b []byte) (invMsg, error) {
	r := reader{b: b}
	var m invMsg
	m.sender = r.u64()
	if r.err || len(r.b) < 1 {
		return m, errBadMsg
	}
	m.kind = r.b[0]
	r.b = r.b[1:]
	m.db = r.str()
	m.fp = r.u64()
	m.seq = r.u64()
	n := r.uvarint()
	if r.err || n > uint64(len(r.b)) {
		return m, errBadMsg
	}
	m.ids = make([]RelID, n)
	for i := range m.ids {
		m.ids[i] = RelID(r.uvarint())
	}
	if r.err {
		return m, errBadMsg
	}
	return m, nil
}

// subscribeLoop applies other instances' invalidations to L1. L1 answers
// only while subscribed (pubsubLive); each (re)subscription first
// invalidates all of L1 and every fill in flight, since messages published
// during the gap are lost, and re-reads other instances' in-flight writes
// from Redis (reconcileMarks), holding every fill until it has. A connection that goes silent (no reply to a
// ping within pubsubSilence) is dropped and replaced: a half-open TCP
// connection must not keep L1 serving while invalidations are lost.
func (c *Cache) subscribeLoop() {
	defer c.wg.Done()
	for c.ctx.Err() == nil {
		c.subscribeOnce()
		c.pubsubLive.Store(false)
		select {
		case <-c.ctx.Done():
			return
		case <-time.After(pubsubRetry):
		}
	}
}

const (
	pubsubPing    = 500 * time.Millisecond
	pubsubSilence = 2 * time.Second
	pubsubRetry   = 100 * time.Millisecond
)

// publish sends an invalidation message. With Cluster it uses sharded
// pub/sub (SPUBLISH, Redis 7): routed by the channel's slot, so its
// receiver count covers every instance, which the acknowledgements rely on
// (a plain PUBLISH counts only the subscribers of the node it ran on).
func (c *Cache) publish(ctx context.Context, cmd redis.Cmdable, msg []byte) *redis.IntCmd {
	if c.sharded {
		return cmd.SPublish(ctx, c.keys.channel(), msg)
	}
	return cmd.Publish(ctx, c.keys.channel(), msg)
}

func (c *Cache) subscribeOnce() {
	var ps *redis.PubSub
	if c.sharded {
		ps = c.rdb.SSubscribe(c.ctx, c.keys.channel())
	} else {
		ps = c.rdb.Subscribe(c.ctx, c.keys.channel())
	}
	defer ps.Close()
	lastHeard := time.Now()
	for {
		v, err := ps.ReceiveTimeout(c.ctx, pubsubPing)
		if c.ctx.Err() != nil {
			return
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && time.Since(lastHeard) < pubsubSilence {
				_ = ps.Ping(c.ctx)
				continue
			}
			if c.pubsubLive.Load() {
				c.redisFailed("subscribe", err)
			}
			return
		}
		lastHeard = time.Now()
		switch m := v.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" || m.Kind == "ssubscribe" {
				c.vers.unsure.Store(true)
				c.flushLocal()
				if err := c.reconcileMarks(c.ctx); err != nil {
					if c.ctx.Err() == nil {
						c.redisFailed("marks", err)
					}
					return // fills stay held; the next subscription retries
				}
				c.vers.unsure.Store(false)
				c.pubsubLive.Store(true)
			}
		case *redis.Message:
			c.applyMsg([]byte(m.Payload))
		}
	}
}

func (c *Cache) applyMsg(b []byte) {
	m, err := decodeMsg(b)
	if err != nil || m.sender == c.id {
		return
	}
	if m.kind != msgAck {
		metricInvalidations.WithLabelValues("remote").Inc()
	}
	switch m.kind {
	case msgRels:
		for _, id := range m.ids {
			c.vers.bump(m.db, id)
		}
	case msgDatabase:
		c.vers.bump(m.db, dbRel)
	case msgFingerprint:
		c.dropL1(func(e *l1Entry) bool { return e.fp == m.fp && (m.db == "" || e.db == m.db) })
	case msgAll:
		c.flushLocal()
	case msgWriteBegin:
		// Hold fills before bumping: a fill that passed the version check
		// must still see the write in flight.
		c.vers.beginRemote(writeID{m.sender, m.fp}, m.db, m.ids, time.Now().Add(c.cfg.WriteLease))
		for _, id := range m.ids {
			c.vers.bump(m.db, id)
		}
		c.sendAck(m.sender, m.seq)
	case msgWriteEnd:
		for _, id := range m.ids {
			c.vers.bump(m.db, id)
		}
		c.vers.endRemote(writeID{m.sender, m.fp})
		c.sendAck(m.sender, m.seq)
	case msgAck:
		if m.fp == c.id {
			c.gotAck(m.seq)
		}
	}
}
