package proxy

import (
	"encoding/binary"
	"fmt"
	"io"
	"sync"
)

// frameReader reads whole protocol messages (type byte, int32 length that
// counts itself, body) from r without allocating in steady state. A frame
// it returns aliases its buffers and is valid only until the next call to
// next.
//
// A client connection's reader (newClientFrameReader over a rawConn) holds
// its buffer only while it has bytes in it: when the socket has nothing to
// read, the buffer goes back to a shared pool before the goroutine parks,
// and a buffer is taken again once data is there. Thousands of idle
// clients then hold no read buffers at all, as in PgBouncer.
type frameReader struct {
	src  io.Reader
	raw  *rawConn // set: buf is lent by clientBufPool and given back while idle
	bp   *[]byte  // the lent buffer, nil while given back
	buf  []byte   // *bp, or a buffer of its own when not lazy
	size int
	r, w int   // unread bytes are buf[r:w]
	err  error // came with the last bytes read; returned by the next fill

	large []byte // holds frames larger than buf
	max   int    // largest accepted body, bytes
	// got is how much of a large frame (want bytes) a read that failed
	// with a timeout had copied into large, so the next call resumes it.
	got, want int
}

// errFrameTooLarge and errFrameLength are protocol violations: the peer's
// stream can't be trusted past them, so the connection ends.
type frameError struct {
	typ  byte
	size int
	msg  string
}

func (e *frameError) Error() string { return e.msg }

func newFrameReader(r io.Reader, size, max int) *frameReader {
	return &frameReader{src: r, buf: make([]byte, size), size: size, max: max}
}

// clientBufPool lends the read buffers of client connections.
var clientBufPool = sync.Pool{New: func() any {
	b := make([]byte, clientReadBuffer)
	return &b
}}

// newClientFrameReader reads a client connection: lazily buffered when c
// is a rawConn, an ordinary frameReader otherwise (TLS, tests).
func newClientFrameReader(c io.Reader, max int) *frameReader {
	rc, ok := c.(*rawConn)
	if !ok {
		return newFrameReader(c, clientReadBuffer, max)
	}
	return &frameReader{src: c, raw: rc, size: clientReadBuffer, max: max}
}

// take is the buffer space a lazy read fills, borrowing the buffer if it
// was given back.
func (fr *frameReader) take() []byte {
	if fr.bp == nil {
		fr.bp = clientBufPool.Get().(*[]byte)
		fr.buf = *fr.bp
	}
	return fr.buf[fr.w:]
}

// giveBack returns the buffer to the pool if it holds nothing unread; the
// rawConn calls it when its socket has nothing to read either.
func (fr *frameReader) giveBack() {
	if fr.bp != nil && fr.r == fr.w {
		fr.r, fr.w = 0, 0
		clientBufPool.Put(fr.bp)
		fr.bp, fr.buf = nil, nil
	}
}

// fill reads until at least n (≤ size) bytes are unread, keeping what it
// read when it fails.
func (fr *frameReader) fill(n int) error {
	if fr.r == fr.w {
		fr.r, fr.w = 0, 0
	} else if fr.size-fr.r < n {
		copy(fr.buf, fr.buf[fr.r:fr.w])
		fr.w -= fr.r
		fr.r = 0
	}
	for empty := 0; fr.w-fr.r < n; {
		if err := fr.err; err != nil {
			fr.err = nil
			return err
		}
		var m int
		var err error
		if fr.raw != nil {
			m, err = fr.raw.readLazy(fr)
		} else {
			m, err = fr.src.Read(fr.buf[fr.w:])
		}
		fr.w += m
		if err != nil {
			if fr.w-fr.r >= n {
				fr.err = err // data came with it: report it on the next read
				return nil
			}
			return err
		}
		if m > 0 {
			empty = 0
		} else if empty++; empty >= 100 {
			return io.ErrNoProgress
		}
	}
	return nil
}

// next returns the message type and the raw frame, header included.
func (fr *frameReader) next() (byte, []byte, error) {
	if fr.got > 0 {
		return fr.readLarge(fr.large[:fr.want])
	}
	if err := fr.fill(5); err != nil {
		if err == io.EOF && fr.w > fr.r {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, err
	}
	hdr := fr.buf[fr.r : fr.r+5]
	typ := hdr[0]
	n := int(int32(binary.BigEndian.Uint32(hdr[1:5])))
	if n < 4 {
		return typ, nil, &frameError{typ: typ, size: n, msg: fmt.Sprintf("invalid message length %d", n)}
	}
	if n-4 > fr.max {
		return typ, nil, &frameError{typ: typ, size: n, msg: fmt.Sprintf("message of %d bytes exceeds max_message_size (%d)", n-4, fr.max)}
	}
	total := n + 1
	if total <= fr.size {
		if err := fr.fill(total); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, nil, err
		}
		frame := fr.buf[fr.r : fr.r+total]
		fr.r += total
		return typ, frame, nil
	}
	if cap(fr.large) < total {
		fr.large = make([]byte, total)
	}
	return fr.readLarge(fr.large[:total])
}

// readLarge reads a frame larger than the buffer into frame (fr.large)
// from fr.got on. A timeout keeps what was read, so that an inline relay
// handing over on its read deadline (inline.go) loses nothing.
func (fr *frameReader) readLarge(frame []byte) (byte, []byte, error) {
	fr.want = len(frame)
	for fr.got < len(frame) {
		n, err := fr.Read(frame[fr.got:])
		fr.got += n
		if err != nil {
			if !isTimeout(err) {
				fr.got = 0
			}
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, nil, err
		}
	}
	fr.got = 0
	// Give very large buffers back rather than pin them per connection.
	if cap(fr.large) > 1<<20 {
		fr.large = nil
	}
	return frame[0], frame, nil
}

// Read reads what is buffered first, then from the connection: the
// startup packet and the auth exchange read through it as an io.Reader.
func (fr *frameReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if fr.r == fr.w {
		if err := fr.err; err != nil {
			fr.err = nil
			return 0, err
		}
		if len(p) >= fr.size {
			return fr.src.Read(p)
		}
		if err := fr.fill(1); err != nil {
			return 0, err
		}
	}
	n := copy(p, fr.buf[fr.r:fr.w])
	fr.r += n
	return n, nil
}

// buffered reports whether another message may already be in memory, so a
// relay can coalesce writes and flush only when its input runs dry.
func (fr *frameReader) buffered() int { return fr.w - fr.r }

// body is a frame without its 5-byte header.
func body(frame []byte) []byte { return frame[5:] }

// appendFrame appends a message with type typ and body b.
func appendFrame(dst []byte, typ byte, b []byte) []byte {
	dst = append(dst, typ, 0, 0, 0, 0)
	binary.BigEndian.PutUint32(dst[len(dst)-4:], uint32(len(b)+4))
	return append(dst, b...)
}

// cstring returns the NUL-terminated string at the start of b and the rest.
func cstring(b []byte) (string, []byte, bool) {
	for i, c := range b {
		if c == 0 {
			return string(b[:i]), b[i+1:], true
		}
	}
	return "", nil, false
}
