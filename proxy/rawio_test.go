package proxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"
)

// tcpPair is a connected loopback pair; the accepted end is wrapped.
func tcpPair(t *testing.T) (raw net.Conn, peer net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		done <- c
	}()
	peer, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	acc := <-done
	raw = newRawConn(acc)
	if _, ok := raw.(*rawConn); !ok {
		t.Fatalf("a TCP connection must take the raw path, got %T", raw)
	}
	t.Cleanup(func() { raw.Close(); peer.Close() })
	return raw, peer
}

// TestRawConnLargeWrite writes far more than the socket buffers hold, so
// the raw write meets EAGAIN and must wait in the netpoller and resume
// where it stopped; the peer must read every byte in order.
func TestRawConnLargeWrite(t *testing.T) {
	raw, peer := tcpPair(t)
	raw.(*rawConn).Conn.(*net.TCPConn).SetWriteBuffer(4096)
	want := make([]byte, 1<<20)
	for i := range want {
		want[i] = byte(i * 7)
	}
	errc := make(chan error, 1)
	go func() {
		n, err := raw.Write(want)
		if err == nil && n != len(want) {
			err = io.ErrShortWrite
		}
		errc <- err
	}()
	got := make([]byte, len(want))
	time.Sleep(50 * time.Millisecond) // let the writer fill the buffers first
	if _, err := io.ReadFull(peer, got); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("bytes differ")
	}
}

// TestRawConnReadWaitsAndEOF: a read with nothing to read waits for data
// (not an error), returns what came, and io.EOF when the peer closes.
func TestRawConnReadWaitsAndEOF(t *testing.T) {
	raw, peer := tcpPair(t)
	go func() {
		time.Sleep(30 * time.Millisecond)
		peer.Write([]byte("hello"))
		time.Sleep(30 * time.Millisecond)
		peer.Close()
	}()
	buf := make([]byte, 64)
	n, err := raw.Read(buf)
	if err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
	if n, err := raw.Read(buf); err != io.EOF {
		t.Fatalf("after close: %d, %v, want io.EOF", n, err)
	}
}

// TestRawConnDeadlineAndClose: deadlines and Close end a waiting read with
// the net package's errors, which the relay relies on (isTimeout,
// net.ErrClosed).
func TestRawConnDeadlineAndClose(t *testing.T) {
	raw, _ := tcpPair(t)
	raw.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	_, err := raw.Read(make([]byte, 8))
	if !isTimeout(err) || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("deadline: %v, want a timeout", err)
	}
	raw.SetReadDeadline(time.Time{})
	go func() { time.Sleep(20 * time.Millisecond); raw.Close() }()
	if _, err := raw.Read(make([]byte, 8)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("close: %v, want net.ErrClosed", err)
	}
	if _, err := raw.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after close: %v, want net.ErrClosed", err)
	}
}

// TestRawConnConcurrentWrites: Writes from several goroutines never mix
// (each frame arrives whole), as net.Conn promises.
func TestRawConnConcurrentWrites(t *testing.T) {
	raw, peer := tcpPair(t)
	const writers, each, size = 8, 200, 3000
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			frame := bytes.Repeat([]byte{byte('a' + w)}, size)
			for i := 0; i < each; i++ {
				if _, err := raw.Write(frame); err != nil {
					t.Error(err)
					return
				}
			}
		}(w)
	}
	go func() { wg.Wait(); raw.Close() }()
	all, err := io.ReadAll(peer)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != writers*each*size {
		t.Fatalf("got %d bytes, want %d", len(all), writers*each*size)
	}
	for off := 0; off < len(all); off += size {
		f := all[off : off+size]
		if bytes.Count(f, f[:1]) != size {
			t.Fatalf("frame at %d mixes writers", off)
		}
	}
}

// TestRawConnNoAlloc: a read and a write cost no allocation.
func TestRawConnNoAlloc(t *testing.T) {
	raw, peer := tcpPair(t)
	msg := []byte("0123456789")
	buf := make([]byte, 64)
	pbuf := make([]byte, 64)
	allocs := testing.AllocsPerRun(200, func() {
		raw.Write(msg)
		peer.Read(pbuf)
		peer.Write(msg)
		raw.Read(buf)
	})
	// The peer is a plain net.Conn (no allocation per call either).
	if allocs != 0 {
		t.Fatalf("%v allocations per round trip, want 0", allocs)
	}
}

// TestRawConnWriteThenRead: an armed request is written by the next Read,
// which then returns the peer's reply; a request larger than the socket
// buffers (the write meets EAGAIN inside the read) still arrives whole
// before the reply is read; a deadline that passed before the Read still
// sends the request.
func TestRawConnWriteThenRead(t *testing.T) {
	for _, size := range []int{5, 4 << 20} {
		raw, peer := tcpPair(t)
		raw.(*rawConn).Conn.(*net.TCPConn).SetWriteBuffer(4096)
		req := bytes.Repeat([]byte{'q'}, size)
		go func() {
			got := make([]byte, size)
			time.Sleep(20 * time.Millisecond)
			if _, err := io.ReadFull(peer, got); err != nil || !bytes.Equal(got, req) {
				peer.Close()
				return
			}
			peer.Write([]byte("reply"))
		}()
		raw.(*rawConn).writeThenRead(req)
		buf := make([]byte, 64)
		n, err := raw.Read(buf)
		if err != nil || string(buf[:n]) != "reply" {
			t.Fatalf("%d-byte request: read %q, %v", size, buf[:n], err)
		}
	}

	raw, peer := tcpPair(t)
	raw.SetReadDeadline(time.Now().Add(-time.Second))
	raw.(*rawConn).writeThenRead([]byte("late"))
	if _, err := raw.Read(make([]byte, 8)); !isTimeout(err) {
		t.Fatalf("expired deadline: %v, want a timeout", err)
	}
	got := make([]byte, 4)
	peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(peer, got); err != nil || string(got) != "late" {
		t.Fatalf("the request behind an expired deadline: %q, %v", got, err)
	}
}
