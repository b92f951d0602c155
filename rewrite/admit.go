package rewrite

import (
	"hash/maphash"
	"sync/atomic"
)

// doorkeeper admits a shape-derived text into the exact-text cache only on
// its second sighting within a short window. Over the simple protocol most
// texts carry a new literal each time (WHERE id = 4711) and never repeat:
// caching them would make every request pay an insert and an eviction, and
// fill the cache with texts that only slow its lookups down. A text that
// repeats is remembered by its hash in one of doorSlots slots; a collision
// only delays an admission.
type doorkeeper struct {
	seed  maphash.Seed
	slots [doorSlots]atomic.Uint64
}

const doorSlots = 1 << 14

func newDoorkeeper() *doorkeeper { return &doorkeeper{seed: maphash.MakeSeed()} }

// admit reports whether text was seen recently, and remembers it.
func (d *doorkeeper) admit(text string) bool {
	h := maphash.String(d.seed, text) | 1 // 0 is an empty slot
	slot := &d.slots[h%doorSlots]
	if slot.Load() == h {
		return true
	}
	slot.Store(h)
	return false
}
