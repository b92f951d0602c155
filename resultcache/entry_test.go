package resultcache

import (
	"bytes"
	"testing"
	"time"
)

func TestL2EntryRoundTrip(t *testing.T) {
	big := bytes.Repeat([]byte("DataRow payload, quite compressible. "), 200)
	tests := []struct {
		name       string
		payload    []byte
		threshold  int
		compressed bool
	}{
		{"small raw", []byte("T\x00\x00\x00\x06\x00\x00C"), 1024, false},
		{"large compressed", big, 1024, true},
		{"threshold off", big, 0, false},
	}
	rels := []RelID{16384, 16390}
	rs := &rstamp{epoch: "42", fpVer: "0", vers: []string{"3", "0"}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			created := time.UnixMilli(time.Now().UnixMilli())
			b := encodeL2(rs, rels, created, time.Minute, tt.payload, tt.threshold)
			if got := b[2]&l2FlagS2 != 0; got != tt.compressed {
				t.Fatalf("compressed = %v, want %v", got, tt.compressed)
			}
			if tt.compressed && len(b) >= len(tt.payload) {
				t.Fatalf("compressed value %d bytes >= payload %d", len(b), len(tt.payload))
			}
			v, err := decodeL2(b)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(v.payload, tt.payload) || !v.created.Equal(created) || v.ttl != time.Minute {
				t.Fatalf("round trip mismatch")
			}
			if !v.matches(rs, rels) {
				t.Fatal("entry does not match its own stamp")
			}
			other := &rstamp{epoch: "42", fpVer: "0", vers: []string{"4", "0"}}
			if v.matches(other, rels) {
				t.Fatal("entry matches a bumped version")
			}
			if v.matches(&rstamp{epoch: "43", fpVer: "0", vers: rs.vers}, rels) {
				t.Fatal("entry matches another epoch")
			}
			if v.matches(rs, []RelID{16384, 16391}) {
				t.Fatal("entry matches other relations")
			}
		})
	}
}

func TestDecodeL2Garbage(t *testing.T) {
	good := encodeL2(&rstamp{epoch: "1", fpVer: "0", vers: []string{"0"}}, []RelID{1}, time.Now(), time.Second, []byte("x"), 0)
	for i := 0; i < len(good)-1; i++ {
		if _, err := decodeL2(good[:i]); err == nil && i < 3 {
			t.Fatalf("truncated at %d accepted", i)
		}
	}
	if _, err := decodeL2([]byte("Sx")); err == nil {
		t.Fatal("garbage accepted")
	}
}

func TestMsgRoundTrip(t *testing.T) {
	c := &Cache{id: 7}
	m, err := decodeMsg(c.encodeMsg(msgRels, "app db", 9, []RelID{1, 2, 300000}))
	if err != nil || m.sender != 7 || m.kind != msgRels || m.db != "app db" || m.fp != 9 || len(m.ids) != 3 || m.ids[2] != 300000 {
		t.Fatalf("got %+v, %v", m, err)
	}
	if _, err := decodeMsg([]byte{1, 2, 3}); err == nil {
		t.Fatal("garbage accepted")
	}
}

func TestBreaker(t *testing.T) {
	now := time.Unix(1000, 0)
	b := newBreaker(BreakerConfig{Failures: 3, Cooldown: time.Second})
	b.now = func() time.Time { return now }
	b.failure()
	b.success()
	b.failure()
	b.failure()
	if !b.closed() {
		t.Fatal("opened before 3 consecutive failures")
	}
	if !b.failure() || b.closed() {
		t.Fatal("not opened after 3 consecutive failures")
	}
	if b.probeDue() {
		t.Fatal("probe before cooldown")
	}
	now = now.Add(time.Second)
	if !b.probeDue() || b.probeDue() {
		t.Fatal("want exactly one probe after cooldown")
	}
	b.probeDone(false)
	if b.closed() || b.probeDue() {
		t.Fatal("failed probe must reopen with a new cooldown")
	}
	now = now.Add(time.Second)
	if !b.probeDue() {
		t.Fatal("no probe after second cooldown")
	}
	b.trip() // an invalidation lost while probing
	b.probeDone(true)
	if b.closed() {
		t.Fatal("closed although an invalidation was lost during the probe")
	}
	now = now.Add(time.Second)
	b.probeDue()
	b.probeDone(true)
	if !b.closed() {
		t.Fatal("not closed after a good probe")
	}
	b.trip()
	if b.closed() {
		t.Fatal("trip must open at once")
	}
}
