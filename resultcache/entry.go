package resultcache

import (
	"encoding/binary"
	"errors"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/s2"
)

// l1Entry is a result held in process. payload is never modified after the
// entry is built: hits hand out the same slice.
type l1Entry struct {
	db        string
	fp        uint64
	st        stamp   // local versions the result was filled under
	rs        *rstamp // Redis versions, nil without L2
	payload   []byte
	createdAt time.Time
	expiresAt time.Time
	refreshAt time.Time // zero: no refresh-ahead
	hits      atomic.Int32
	// refreshing holds the UnixNano when a refresh ticket was handed out, so
	// that exactly one caller refreshes (again after fill_timeout).
	refreshing atomic.Int64
}

// l1Overhead approximates the bytes of an entry beyond its payload, so that
// many tiny results can't exceed l1_max_bytes by much.
const l1Overhead = 160

func (e *l1Entry) weight() uint32 {
	return uint32(len(e.payload) + len(e.db) + l1Overhead + 16*len(e.st.rels))
}

// rstamp is what the Redis version hash held when a lookup ran: the
// epoch ("" if the hash did not exist), the fingerprint's purge version and
// each relation's version, as the decimal strings Redis returns ("0" when
// absent), compared as-is by the store script.
type rstamp struct {
	epoch string
	fpVer string
	vers  []string // in Request.Rels order
}

// L2 value layout (format 1):
//
//	'S' 1 flags | str epoch | str fpVer | i64 createdMs | i64 ttlMs |
//	uvarint n | n × (uvarint oid, str ver) | payload (s2 if flags&1)
//
// where str is a uvarint length and bytes.
const (
	l2Magic       = 'S'
	l2Format      = 1
	l2FlagS2 byte = 1
)

var errBadEntry = errors.New("resultcache: malformed L2 entry")

// encodeL2 builds the Redis value. Compression with s2 above the
// threshold: it decodes at several GB/s per core with no per-stream state,
// which matters on the hit path, while zstd's better ratio saves little on
// the local network between Sluice and Redis.
func encodeL2(rs *rstamp, rels []RelID, created time.Time, ttl time.Duration, payload []byte, threshold int) []byte {
	var flags byte
	body := payload
	if threshold > 0 && len(payload) >= threshold {
		if c := s2.Encode(nil, payload); len(c) < len(payload) {
			body, flags = c, l2FlagS2
		}
	}
	b := make([]byte, 0, 64+len(rels)*8+len(body))
	b = append(b, l2Magic, l2Format, flags)
	b = appendStr(b, rs.epoch)
	b = appendStr(b, rs.fpVer)
	b = binary.BigEndian.AppendUint64(b, uint64(created.UnixMilli()))
	b = binary.BigEndian.AppendUint64(b, uint64(ttl.Milliseconds()))
	b = binary.AppendUvarint(b, uint64(len(rels)))
	for i, id := range rels {
		b = binary.AppendUvarint(b, uint64(id))
		b = appendStr(b, rs.vers[i])
	}
	return append(b, body...)
}

// l2Value is a decoded Redis value.
type l2Value struct {
	rs      rstamp
	rels    []RelID
	created time.Time
	ttl     time.Duration
	payload []byte
}

func decodeL2(b []byte) (*l2Value, error) {
	if len(b) < 3 || b[0] != l2Magic || b[1] != l2Format {
		return nil, errBadEntry
	}
	flags := b[2]
	r := reader{b: b[3:]}
	v := &l2Value{}
	v.rs.epoch = r.str()
	v.rs.fpVer = r.str()
	v.created = time.UnixMilli(int64(r.u64()))
	v.ttl = time.Duration(int64(r.u64())) * time.Millisecond
	n := r.uvarint()
	if r.err || n > uint64(len(r.b)) {
		return nil, errBadEntry
	}
	v.rels = make([]RelID, n)
	v.rs.vers = make([]string, n)
	for i := range v.rels {
		v.rels[i] = RelID(r.uvarint())
		v.rs.vers[i] = r.str()
	}
	if r.err {
		return nil, errBadEntry
	}
	v.payload = r.b
	if flags&l2FlagS2 != 0 {
		p, err := s2.Decode(nil, r.b)
		if err != nil {
			return nil, errBadEntry
		}
		v.payload = p
	}
	return v, nil
}

// matches reports whether a stored value is valid under the versions a
// lookup just read from Redis.
func (v *l2Value) matches(cur *rstamp, rels []RelID) bool {
	if cur.epoch == "" || v.rs.epoch != cur.epoch || v.rs.fpVer != cur.fpVer || len(v.rels) != len(rels) {
		return false
	}
	for i, id := range rels {
		if v.rels[i] != id || v.rs.vers[i] != cur.vers[i] {
			return false
		}
	}
	return true
}

type reader struct {
	b   []byte
	err bool
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = true
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) u64() uint64 {
	if len(r.b) < 8 {
		r.err = true
		return 0
	}
	v := binary.BigEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

func (r *reader) str() string {
	n := r.uvarint()
	if r.err || n > uint64(len(r.b)) {
		r.err = true
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func fpField(fp uint64) string { return "f" + strconv.FormatUint(fp, 16) }
