package resultcache

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"sync"
)

// KeySettings lists, in the order the proxy fills KeyInput.Settings, the
// session settings that change the bytes or the rows of a result: text output
// of dates, numbers, money and bytea, string-literal parsing, and the
// row-security switch. The first ten are the list; the rest change
// parsing (array_nulls, transform_null_equals, timezone_abbreviations) or
// output (xmlbinary, xmloption) or which rows are returned (row_security).
var KeySettings = []string{
	"client_encoding", "DateStyle", "IntervalStyle", "TimeZone",
	"extra_float_digits", "bytea_output", "standard_conforming_strings",
	"lc_monetary", "lc_numeric", "lc_time",
	"timezone_abbreviations", "array_nulls", "transform_null_equals",
	"xmlbinary", "xmloption", "row_security",
}

// KeyInput is everything that decides which bytes PostgreSQL would answer
// and whether this client may read them.
type KeyInput struct {
	Database string
	// Role is the effective role (after SET ROLE / SET SESSION
	// AUTHORIZATION); a session whose role can't be tracked must not look up.
	Role       string
	SearchPath string
	// Settings holds the values of KeySettings in that order.
	Settings []string
	// SQL is the statement text after rewriting and NormalizeComments.
	SQL string
	// Protocol is 'Q' (simple) or 'E' (extended): the answers differ.
	Protocol byte
	// Described: the extended-protocol answer includes RowDescription.
	Described     bool
	ParamFormats  []int16
	Params        [][]byte // nil is NULL, distinct from empty
	ResultFormats []int16
}

// Key identifies one cached result. SHA-256 and not a fast non-cryptographic
// hash: parameters come from clients, and a crafted collision with another
// role's key would serve that role's rows. It costs about a microsecond for a
// typical extended-protocol statement (BenchmarkMakeKey), small next to a
// Redis round trip and far below a PostgreSQL query.
type Key [32]byte

// String is the hex form used in Redis keys and logs.
func (k Key) String() string { return hex.EncodeToString(k[:]) }

var keyBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// maxPooledKeyBuf keeps the pool from pinning buffers grown by huge
// statements or parameters.
const maxPooledKeyBuf = 64 << 10

// MakeKey derives the key. Every field is length-prefixed (and NULL
// parameters marked) so that no two different inputs serialize alike.
// It does not allocate for inputs under 64 KiB.
func MakeKey(in *KeyInput) Key {
	bp := keyBufs.Get().(*[]byte)
	b := (*bp)[:0]
	b = append(b, 'S', 'K', 1) // format version of the serialization
	b = appendStr(b, in.Database)
	b = appendStr(b, in.Role)
	b = appendStr(b, in.SearchPath)
	b = binary.AppendUvarint(b, uint64(len(in.Settings)))
	for _, s := range in.Settings {
		b = appendStr(b, s)
	}
	b = appendStr(b, in.SQL)
	b = append(b, in.Protocol)
	if in.Described {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	b = appendFormats(b, in.ParamFormats)
	b = binary.AppendUvarint(b, uint64(len(in.Params)))
	for _, p := range in.Params {
		if p == nil {
			b = append(b, 0)
			continue
		}
		b = append(b, 1)
		b = binary.AppendUvarint(b, uint64(len(p)))
		b = append(b, p...)
	}
	b = appendFormats(b, in.ResultFormats)
	k := Key(sha256.Sum256(b))
	if cap(b) <= maxPooledKeyBuf {
		*bp = b
		keyBufs.Put(bp)
	}
	return k
}

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendFormats(b []byte, f []int16) []byte {
	b = binary.AppendUvarint(b, uint64(len(f)))
	for _, v := range f {
		b = binary.BigEndian.AppendUint16(b, uint16(v))
	}
	return b
}
