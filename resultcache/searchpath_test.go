package resultcache

import (
	"slices"
	"testing"
)

func TestParseSearchPath(t *testing.T) {
	tests := []struct {
		in, user string
		want     []string
	}{
		{`"$user", public`, "alice", []string{"alice", "public"}},
		{`$user,public`, "bob", []string{"bob", "public"}},
		{`Public, "MixedCase", "a""b"`, "", []string{"public", "MixedCase", `a"b`}},
		{``, "x", nil},
		{` app , pg_catalog `, "", []string{"app", "pg_catalog"}},
	}
	for _, tt := range tests {
		if got := parseSearchPath(tt.in, tt.user); !slices.Equal(got, tt.want) {
			t.Errorf("parseSearchPath(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestEffectivePath(t *testing.T) {
	schemas := map[string]bool{"public": true, "app": true, "pg_catalog": true}
	tests := []struct {
		path, want []string
	}{
		{[]string{"app", "public"}, []string{"pg_catalog", "app", "public"}},
		{[]string{"app", "pg_catalog", "public"}, []string{"app", "pg_catalog", "public"}},
		{[]string{"missing", "pg_temp", "public"}, []string{"pg_catalog", "public"}},
	}
	for _, tt := range tests {
		if got := effectivePath(tt.path, schemas); !slices.Equal(got, tt.want) {
			t.Errorf("effectivePath(%q) = %q, want %q", tt.path, got, tt.want)
		}
	}
}
