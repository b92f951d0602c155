package resultcache

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Write edges (BeginWrite, Done) wait until every other instance
// subscribed to the invalidation channel has applied them (or
// redis.ack_timeout passes): otherwise a client that writes through one
// instance and reads through another right after could be answered from
// the second one's L1 before its subscriber processed the PUBLISH. PUBLISH
// returns how many subscribers received the message; each of them answers
// with an msgAck.

type ackWait struct {
	got atomic.Int32
	ch  chan struct{}
}

type ackReq struct {
	target, seq uint64
}

type acks struct {
	mu sync.Mutex
	m  map[uint64]*ackWait
}

func (c *Cache) registerAck(seq uint64) *ackWait {
	aw := &ackWait{ch: make(chan struct{}, 1)}
	c.acks.mu.Lock()
	c.acks.m[seq] = aw
	c.acks.mu.Unlock()
	return aw
}

func (c *Cache) unregisterAck(seq uint64) {
	c.acks.mu.Lock()
	delete(c.acks.m, seq)
	c.acks.mu.Unlock()
}

func (c *Cache) gotAck(seq uint64) {
	c.acks.mu.Lock()
	aw := c.acks.m[seq]
	c.acks.mu.Unlock()
	if aw == nil {
		return
	}
	aw.got.Add(1)
	select {
	case aw.ch <- struct{}{}:
	default:
	}
}

// waitAcks waits for need acknowledgements of one edge.
func (c *Cache) waitAcks(aw *ackWait, need int) {
	if need <= 0 {
		return
	}
	t := time.NewTimer(c.cfg.Redis.AckTimeout)
	defer t.Stop()
	for int(aw.got.Load()) < need {
		select {
		case <-aw.ch:
		case <-t.C:
			metricAckTimeouts.Inc()
			return
		case <-c.ctx.Done():
			return
		}
	}
}

// sendAck queues an acknowledgement; the subscriber must not block on a
// Redis round trip per message.
func (c *Cache) sendAck(target, seq uint64) {
	if seq == 0 {
		return
	}
	select {
	case c.ackq <- ackReq{target, seq}:
	default: // the writer times out waiting; counted there
	}
}

// ackLoop publishes queued acknowledgements, pipelined.
func (c *Cache) ackLoop() {
	defer c.wg.Done()
	for {
		var batch []ackReq
		select {
		case <-c.ctx.Done():
			return
		case a := <-c.ackq:
			batch = append(batch, a)
		}
	drain:
		for len(batch) < 256 {
			select {
			case a := <-c.ackq:
				batch = append(batch, a)
			default:
				break drain
			}
		}
		ctx, cancel := context.WithTimeout(c.ctx, c.invalidateTimeout())
		pipe := c.rdb.Pipeline()
		for _, a := range batch {
			c.publish(ctx, pipe, c.encodeMsgSeq(msgAck, "", a.target, a.seq, nil))
		}
		if _, err := pipe.Exec(ctx); err != nil && c.ctx.Err() == nil {
			metricRedisErrors.WithLabelValues("ack").Inc()
		}
		cancel()
	}
}
