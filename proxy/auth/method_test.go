package auth_test

import (
	"testing"

	"github.com/sluice-proxy/sluice/proxy/auth"
)

func TestParseMethod(t *testing.T) {
	tests := []struct {
		in      string
		want    auth.Method
		wantErr bool
	}{
		{"", auth.MethodSCRAM, false},
		{"scram-sha-256", auth.MethodSCRAM, false},
		{"SCRAM-SHA-256", auth.MethodSCRAM, false},
		{"md5", auth.MethodMD5, false},
		{" password ", auth.MethodPassword, false},
		{"trust", auth.MethodTrust, false},
		{"scram", "", true},
		{"cert", "", true},
	}
	for _, tt := range tests {
		got, err := auth.ParseMethod(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseMethod(%q) = %q, %v; want %q, err=%v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}
