package main

import (
	"os"
	"strings"
	"testing"
)

func TestParseRSS(t *testing.T) {
	tests := []struct {
		name, status string
		want         int64
		wantErr      bool
	}{
		{name: "proc status", status: "Name:\tsluice\nVmPeak:\t 1300000 kB\nVmRSS:\t   16288 kB\nRssAnon:\t 8000 kB\n", want: 16288},
		{name: "no VmRSS (kernel thread)", status: "Name:\tkthreadd\nState:\tS (sleeping)\n", wantErr: true},
		{name: "unit other than kB", status: "VmRSS:\t 12 MB\n", wantErr: true},
		{name: "not a number", status: "VmRSS:\t lots kB\n", wantErr: true},
		{name: "empty", status: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseRSS(strings.NewReader(tt.status))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("got %d, want %d", got, tt.want)
			}
		})
	}
}

func TestReadRSSSelf(t *testing.T) {
	kib, err := readRSS(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// A running Go test binary is resident in at least a megabyte.
	if kib < 1024 {
		t.Errorf("own VmRSS = %d KiB, implausibly small", kib)
	}
}
