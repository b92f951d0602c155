package cache_test

import (
	"testing"
)

// corpusSQL creates a table holding the types whose encodings a cache could
// get wrong, with edge values and an all-NULL row.
var corpusSQL = []string{
	`CREATE TABLE corpus (id int PRIMARY KEY, n numeric, ts timestamptz, j json, jb jsonb, b bytea,
		ia int[], ta text[], t text, f float8, iv interval, u uuid)`,
	`INSERT INTO corpus VALUES
	 (1, 12345678901234567890.123456789, '2024-02-29 23:59:59.123456+05:30', '{"a": [1, 2.50, null], "b": "x"}',
	  '{"b": "x", "a": [1, 2.50, null]}', '\x00ff10', '{1,NULL,-3}', '{"a b","c\"d",NULL}', 'héllo ''quoted'' 😀',
	  0.1, '1 year 2 mons 3 days 04:05:06.789', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'),
	 (2, 'NaN', '-infinity', '[]', '{}', '', '{}', '{}', '', '-Infinity', '-00:00:00.000001', '00000000-0000-0000-0000-000000000000'),
	 (3, -0.000000001, '1970-01-01 00:00:00+00', 'null', '"s"', '\xdeadbeef', '{{1,2},{3,4}}', '{x}', repeat('z', 3000),
	  1e308, '-178000000 years', 'ffffffff-ffff-ffff-ffff-ffffffffffff'),
	 (4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`,
}

// TestByteIdentical: an answer served from the cache is, message for
// message and byte for byte (RowDescription, DataRows, CommandComplete and
// for the extended protocol ParseComplete/BindComplete), what PostgreSQL
// sends directly, for a corpus of types in text and binary result formats
// and under several extra_float_digits / bytea_output / DateStyle startup
// settings (each its own cache key).
func TestByteIdentical(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	s.exec(corpusSQL...)
	inst := s.start("transaction", s.cacheYAML("rules", "")+ruleYAML("corpus"))
	settings := []struct{ name, params string }{
		{"defaults", ""},
		{"extra_float_digits=0", "&extra_float_digits=0"},
		{"extra_float_digits=3", "&extra_float_digits=3"},
		{"bytea_escape_datestyle_german", "&bytea_output=escape&DateStyle=German,DMY&IntervalStyle=sql_standard"},
	}
	const q = "SELECT * FROM corpus WHERE id >= $1 ORDER BY id"
	const qSimple = "SELECT * FROM corpus ORDER BY id"
	for _, set := range settings {
		t.Run(set.name, func(t *testing.T) {
			direct := rawConnect(t, s.pg.DSN(s.db)+set.params)
			via := rawConnect(t, inst.DSN(s.pg.User, s.pg.Password, s.db)+set.params)
			cases := []struct {
				name string
				run  func(r *rawConn) wire
			}{
				{"simple", func(r *rawConn) wire { return r.simple(qSimple) }},
				{"extended_text", func(r *rawConn) wire {
					return r.extended(execUnit{sql: q, params: [][]byte{[]byte("1")}, resultFormats: []int16{0}})
				}},
				{"extended_binary", func(r *rawConn) wire {
					return r.extended(execUnit{sql: q, params: [][]byte{[]byte("1")}, resultFormats: []int16{1}})
				}},
				{"extended_mixed", func(r *rawConn) wire {
					return r.extended(execUnit{sql: q, params: [][]byte{[]byte("2")}, resultFormats: []int16{1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0}})
				}},
			}
			for _, c := range cases {
				want := c.run(direct)
				p := s.proof(t, inst)
				miss := c.run(via)
				p.expect(c.name+" first", 0)
				if !miss.equal(want) {
					t.Fatalf("%s: through Sluice (miss) differs from direct: %s", c.name, miss.firstDiff(want))
				}
				hit := c.run(via)
				p.expect(c.name+" second", 1)
				if !hit.equal(want) {
					t.Fatalf("%s: cache hit differs from direct: %s", c.name, hit.firstDiff(want))
				}
				if len(want) < 6 {
					t.Fatalf("%s: suspiciously short answer %v", c.name, want)
				}
			}
		})
	}
}
