package proxy

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
)

// frameReader reads whole protocol messages (type byte, int32 length that
// counts itself, body) from a buffered reader without allocating in steady
// state. A frame it returns aliases its buffers and is valid only until the
// next call to next.
type frameReader struct {
	r   *bufio.Reader
	buf []byte // holds frames larger than the bufio buffer
	max int    // largest accepted body, bytes
	// got is how much of a large frame (want bytes) a read that failed
	// with a timeout had copied into buf, so the next call resumes it.
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
	return &frameReader{r: bufio.NewReaderSize(r, size), max: max}
}

// next returns the message type and the raw frame, header included.
func (fr *frameReader) next() (byte, []byte, error) {
	if fr.got > 0 {
		return fr.readLarge(fr.buf[:fr.want])
	}
	hdr, err := fr.r.Peek(5)
	if err != nil {
		if err == io.EOF && len(hdr) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, err
	}
	typ := hdr[0]
	n := int(int32(binary.BigEndian.Uint32(hdr[1:5])))
	if n < 4 {
		return typ, nil, &frameError{typ: typ, size: n, msg: fmt.Sprintf("invalid message length %d", n)}
	}
	if n-4 > fr.max {
		return typ, nil, &frameError{typ: typ, size: n, msg: fmt.Sprintf("message of %d bytes exceeds max_message_size (%d)", n-4, fr.max)}
	}
	total := n + 1
	if total <= fr.r.Size() {
		frame, err := fr.r.Peek(total)
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, nil, err
		}
		fr.r.Discard(total)
		return typ, frame, nil
	}
	if cap(fr.buf) < total {
		fr.buf = make([]byte, total)
	}
	return fr.readLarge(fr.buf[:total])
}

// readLarge reads a frame larger than the bufio buffer into frame (fr.buf)
// from fr.got on. A timeout keeps what was read, so that an inline relay
// handing over on its read deadline (inline.go) loses nothing.
func (fr *frameReader) readLarge(frame []byte) (byte, []byte, error) {
	fr.want = len(frame)
	for fr.got < len(frame) {
		n, err := fr.r.Read(frame[fr.got:])
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
	if cap(fr.buf) > 1<<20 {
		fr.buf = nil
	}
	return frame[0], frame, nil
}

// buffered reports whether another message may already be in memory, so a
// relay can coalesce writes and flush only when its input runs dry.
func (fr *frameReader) buffered() int { return fr.r.Buffered() }

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
