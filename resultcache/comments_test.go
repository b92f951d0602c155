package resultcache

import (
	"testing"
	"time"
)

func TestNormalizeComments(t *testing.T) {
	tests := []struct {
		in, want string
		dir      Directive
	}{
		{"select 1", "select 1", Directive{}},
		{"select 1 /*traceparent='00-ab'*/", "select 1", Directive{}},
		{"/* app */ select 1", "select 1", Directive{}},
		{"select 1 -- trailing\n", "select 1", Directive{}},
		{"select/*x*/1", "select 1", Directive{}},
		{"select 'a /* not */ b'", "select 'a /* not */ b'", Directive{}},
		{"select 'it''s -- no'", "select 'it''s -- no'", Directive{}},
		{`select "a--b" from t /* c */`, `select "a--b" from t`, Directive{}},
		{"select $$ /* keep */ $$ /* drop */", "select $$ /* keep */ $$", Directive{}},
		{"select $tag$ -- keep $tag$ -- drop", "select $tag$ -- keep $tag$", Directive{}},
		{"select $1 /* x */", "select $1", Directive{}},
		{"select E'\\' /* in string */' /* drop */", "select E'\\' /* in string */'", Directive{}},
		{"/* outer /* nested */ still */ select 1", "select 1", Directive{}},
		{"/* sluice:nocache */ select 1", "select 1", Directive{NoCache: true}},
		{"/* sluice:cache ttl=60s */ select 1", "select 1", Directive{Cache: true, TTL: time.Minute}},
		{"/* sluice:cache */ select 1", "select 1", Directive{Cache: true}},
		{"/* sluice:cache ttl=bogus */ select 1", "select 1", Directive{}},
		{"/* sluice:cache ttl=5s */ select 1 /* sluice:nocache */", "select 1", Directive{NoCache: true}},
		// unsafe or unterminated: unchanged, no directive
		{"select 'a\\' /* x */ '", "select 'a\\' /* x */ '", Directive{}},
		{"select 1 /* open", "select 1 /* open", Directive{}},
		{"select 'open /* sluice:nocache */", "select 'open /* sluice:nocache */", Directive{}},
	}
	for _, tt := range tests {
		got, dir := NormalizeComments(tt.in)
		if got != tt.want || dir != tt.dir {
			t.Errorf("NormalizeComments(%q) = %q, %+v; want %q, %+v", tt.in, got, dir, tt.want, tt.dir)
		}
	}
}

// Tracing tags must not split entries: differently tagged copies of one
// statement normalize alike.
func TestNormalizeCommentsSameKey(t *testing.T) {
	a, _ := NormalizeComments("select * from t where id = $1 /*traceparent='1'*/")
	b, _ := NormalizeComments("select * from t where id = $1 /*traceparent='2',route='/x'*/")
	if a != b {
		t.Fatalf("%q != %q", a, b)
	}
}

func FuzzNormalizeComments(f *testing.F) {
	for _, s := range []string{"select 1 /* x */", "select 'a' -- b\n", "$a$ x $a$", "E'\\''", `"x"/*`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out, _ := NormalizeComments(s)
		if len(out) > len(s) {
			t.Fatalf("output longer than input: %q -> %q", s, out)
		}
		again, _ := NormalizeComments(out)
		if again != out {
			t.Fatalf("not idempotent: %q -> %q -> %q", s, out, again)
		}
	})
}
