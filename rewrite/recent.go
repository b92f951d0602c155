package rewrite

import "bytes"

// Recent is one client's memory of the shape of the last text it sent.
// Clients repeat a few statements with new literals, and over the simple
// protocol each such text is new: with Recent, the shape of a repeat is
// found by comparing its key with the last one instead of looking it up in
// the engine's shared table (a hash of the key, and a table that is cold
// in the CPU's caches when the client's statements are far apart). The
// zero value is ready; it is not safe for concurrent use (one per client,
// used by the goroutine that reads that client).
type Recent struct {
	eng  *Engine
	sh   *shape
	last []byte // sh's shape key
}

// maxRecentKey bounds the key a Recent keeps, so a client that sends huge
// texts does not keep a copy of one for its whole life.
const maxRecentKey = 1024

// find returns the remembered shape when key is its key under engine e.
func (r *Recent) find(e *Engine, key []byte) *shape {
	if r == nil || r.eng != e || r.sh == nil || !bytes.Equal(r.last, key) {
		return nil
	}
	return r.sh
}

// remember keeps sh as the shape of key under engine e.
func (r *Recent) remember(e *Engine, key []byte, sh *shape) {
	if r == nil || len(key) > maxRecentKey {
		return
	}
	r.eng, r.sh = e, sh
	r.last = append(r.last[:0], key...)
}

// ProcessRecent is Process for a client that keeps a Recent: the same
// Decision, found faster when the client repeats a statement's shape.
func (e *Engine) ProcessRecent(sql string, s Session, r *Recent) *Decision {
	return e.process(sql, s, r)
}
