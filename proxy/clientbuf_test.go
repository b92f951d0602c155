package proxy

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"
)

// TestClientFrameReaderGivesBufferBack: a client reader over a socket
// holds its read buffer only while bytes are unread. Parked on an empty
// socket (here until a short deadline) it holds none; parked on half a
// frame it keeps the half; every frame arrives whole.
func TestClientFrameReaderGivesBufferBack(t *testing.T) {
	raw, peer := tcpPair(t)
	fr := newClientFrameReader(raw, 1<<20)
	if fr.raw == nil {
		t.Fatal("a client socket must get the lazy reader")
	}
	park := func() error {
		raw.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		_, _, err := fr.next()
		raw.SetReadDeadline(time.Time{})
		return err
	}
	if err := park(); !isTimeout(err) {
		t.Fatalf("empty socket: got %v, want a timeout", err)
	}
	if fr.bp != nil {
		t.Fatal("reader parked on an empty socket holds a buffer")
	}
	for i, f := range testFrames() {
		if _, err := peer.Write(f[:3]); err != nil {
			t.Fatal(err)
		}
		if err := park(); !isTimeout(err) {
			t.Fatalf("frame %d: half a header: got %v, want a timeout", i, err)
		}
		if fr.bp == nil || fr.buffered() != 3 {
			t.Fatalf("frame %d: a partial frame must keep the buffer (%d bytes buffered)", i, fr.buffered())
		}
		if _, err := peer.Write(f[3:]); err != nil {
			t.Fatal(err)
		}
		_, got, err := fr.next()
		if err != nil || !bytes.Equal(got, f) {
			t.Fatalf("frame %d: got %q, %v; want %q", i, got, err, f)
		}
		if err := park(); !isTimeout(err) {
			t.Fatalf("frame %d: after it: got %v, want a timeout", i, err)
		}
		if fr.bp != nil {
			t.Fatalf("frame %d: reader parked after it still holds a buffer", i)
		}
	}
	peer.Close()
	if _, _, err := fr.next(); err != io.EOF {
		t.Fatalf("after the peer closed: got %v, want io.EOF", err)
	}
}

// shortWriter accepts limit bytes, then fails.
type shortWriter struct {
	bytes.Buffer
	limit int
	calls int
}

var errShort = errors.New("short")

func (w *shortWriter) Write(p []byte) (int, error) {
	w.calls++
	if w.Len()+len(p) > w.limit {
		n := w.limit - w.Len()
		w.Buffer.Write(p[:n])
		return n, errShort
	}
	return w.Buffer.Write(p)
}

// TestClientWriter: writes are coalesced until Flush, which gives the
// buffer back; a write of a buffer or more with nothing buffered goes
// straight out; a full buffer is written out in order; the first error
// sticks.
func TestClientWriter(t *testing.T) {
	w := &shortWriter{limit: 1 << 30}
	c := newClientWriter(w)
	c.Write([]byte("ab"))
	c.Write([]byte("cd"))
	if w.calls != 0 || c.n != 4 || c.bp == nil {
		t.Fatalf("small writes: %d calls, %d buffered", w.calls, c.n)
	}
	if err := c.Flush(); err != nil || w.String() != "abcd" || w.calls != 1 || c.bp != nil {
		t.Fatalf("flush: %v, %q, %d calls, buffer held %v", err, w.String(), w.calls, c.bp != nil)
	}
	big := bytes.Repeat([]byte("x"), clientWriteBuffer+10)
	if n, err := c.Write(big); n != len(big) || err != nil || w.calls != 2 || c.bp != nil {
		t.Fatalf("big write: %d, %v, %d calls", n, err, w.calls)
	}
	w.Reset()
	c.Write([]byte("head"))
	c.Write(big)
	c.Flush()
	if want := append([]byte("head"), big...); !bytes.Equal(w.Bytes(), want) {
		t.Fatalf("buffered then big: %d bytes out, want %d in order", w.Len(), len(want))
	}
	w.Reset()
	w.limit = 3
	c.Write([]byte("hello"))
	if err := c.Flush(); err != errShort {
		t.Fatalf("failed flush: %v", err)
	}
	if _, err := c.Write([]byte("more")); err != errShort {
		t.Fatalf("write after a failure: %v, want the sticky error", err)
	}
	if c.Flush() != errShort || c.bp != nil {
		t.Fatal("flush after a failure must fail and hold no buffer")
	}
	c.Reset(w)
	w.limit = 1 << 30
	c.Write([]byte("ok"))
	if err := c.Flush(); err != nil {
		t.Fatalf("after Reset: %v", err)
	}
}
