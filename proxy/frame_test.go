package proxy

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"testing/iotest"
)

// frames is a stream of test messages: small ones, an empty body, and
// bodies larger than the smallest bufio buffer so both read paths run.
func testFrames() [][]byte {
	bodies := []struct {
		typ  byte
		body string
	}{
		{'Q', "SELECT 1\x00"},
		{'S', ""},
		{'P', "\x00" + strings.Repeat("x", 100) + "\x00\x00\x00"},
		{'D', strings.Repeat("r", 5000)},
		{'H', ""},
		{'d', strings.Repeat("c", 17)},
		{'X', ""},
	}
	var out [][]byte
	for _, b := range bodies {
		out = append(out, appendFrame(nil, b.typ, []byte(b.body)))
	}
	return out
}

// slowReader returns at most one byte per Read, and (0, nil) every other
// call, which io.Reader allows and bufio must tolerate.
type slowReader struct {
	r    io.Reader
	idle bool
}

func (s *slowReader) Read(p []byte) (int, error) {
	s.idle = !s.idle
	if s.idle {
		return 0, nil
	}
	if len(p) > 1 {
		p = p[:1]
	}
	return s.r.Read(p)
}

func TestFrameReaderSplitAtEveryByte(t *testing.T) {
	frames := testFrames()
	stream := bytes.Join(frames, nil)
	readers := map[string]func(io.Reader) io.Reader{
		"whole":      func(r io.Reader) io.Reader { return r },
		"one-byte":   iotest.OneByteReader,
		"half":       iotest.HalfReader,
		"data-err":   iotest.DataErrReader,
		"slow-empty": func(r io.Reader) io.Reader { return &slowReader{r: r} },
	}
	for name, wrap := range readers {
		for _, size := range []int{16, 64, 4096} {
			fr := newFrameReader(wrap(bytes.NewReader(stream)), size, 1<<20)
			for i, want := range frames {
				typ, got, err := fr.next()
				if err != nil {
					t.Fatalf("%s/%d: frame %d: %v", name, size, i, err)
				}
				if typ != want[0] || !bytes.Equal(got, want) {
					t.Fatalf("%s/%d: frame %d: got %q (type %c), want %q", name, size, i, got, typ, want)
				}
			}
			if _, _, err := fr.next(); err != io.EOF {
				t.Fatalf("%s/%d: after the last frame: got %v, want io.EOF", name, size, err)
			}
		}
	}
}

// TestFrameReaderSplitPoints feeds the stream as two writes split at every
// possible byte through a pipe-like reader: a frame must come out whole
// whatever the split.
func TestFrameReaderSplitPoints(t *testing.T) {
	frames := testFrames()
	stream := bytes.Join(frames, nil)
	for cut := 0; cut <= len(stream); cut++ {
		r := io.MultiReader(bytes.NewReader(stream[:cut]), bytes.NewReader(stream[cut:]))
		fr := newFrameReader(r, 16, 1<<20)
		for i, want := range frames {
			_, got, err := fr.next()
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("cut %d, frame %d: got %q, %v; want %q", cut, i, got, err, want)
			}
		}
	}
}

func TestFrameReaderErrors(t *testing.T) {
	hdr := func(typ byte, n int32) []byte {
		return []byte{typ, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}
	}
	big := appendFrame(nil, 'D', bytes.Repeat([]byte{'z'}, 300))
	cases := []struct {
		name      string
		in        []byte
		max       int
		frameErr  string // substring of a *frameError
		wantErr   error  // or this error
		wantFrame bool
	}{
		{name: "length 3", in: hdr('Q', 3), max: 100, frameErr: "invalid message length 3"},
		{name: "length 0", in: hdr('Q', 0), max: 100, frameErr: "invalid message length 0"},
		{name: "negative length", in: hdr('Q', -1), max: 100, frameErr: "invalid message length -1"},
		{name: "oversize", in: hdr('Q', 105), max: 100, frameErr: "message of 101 bytes exceeds max_message_size (100)"},
		{name: "oversize huge", in: hdr('d', 0x7fffffff), max: 1 << 20, frameErr: "exceeds max_message_size"},
		{name: "exactly max", in: appendFrame(nil, 'Q', make([]byte, 100)), max: 100, wantFrame: true},
		{name: "empty stream", in: nil, max: 100, wantErr: io.EOF},
		{name: "half header", in: []byte{'Q', 0, 0}, max: 100, wantErr: io.ErrUnexpectedEOF},
		{name: "type only", in: []byte{'Q'}, max: 100, wantErr: io.ErrUnexpectedEOF},
		{name: "short body (buffered path)", in: append(hdr('Q', 20), "abc"...), max: 100, wantErr: io.ErrUnexpectedEOF},
		{name: "header only", in: hdr('Q', 20), max: 100, wantErr: io.ErrUnexpectedEOF},
		{name: "short body (large path)", in: big[:200], max: 1000, wantErr: io.ErrUnexpectedEOF},
		{name: "large frame", in: big, max: 1000, wantFrame: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, wrap := range []func(io.Reader) io.Reader{
				func(r io.Reader) io.Reader { return r }, iotest.OneByteReader,
			} {
				fr := newFrameReader(wrap(bytes.NewReader(tc.in)), 16, tc.max)
				typ, frame, err := fr.next()
				switch {
				case tc.wantFrame:
					if err != nil || !bytes.Equal(frame, tc.in) || typ != tc.in[0] {
						t.Fatalf("got %q, %v; want the whole frame", frame, err)
					}
				case tc.frameErr != "":
					var fe *frameError
					if !errors.As(err, &fe) || !strings.Contains(fe.Error(), tc.frameErr) {
						t.Fatalf("got %v (%T), want *frameError containing %q", err, err, tc.frameErr)
					}
					if frame != nil {
						t.Fatalf("frame %q returned with an error", frame)
					}
				default:
					if !errors.Is(err, tc.wantErr) {
						t.Fatalf("got %v, want %v", err, tc.wantErr)
					}
				}
			}
		})
	}
}

// TestFrameReaderLargeFrames checks frames above the bufio size, one after
// another, including one larger than the 1 MiB buffer the reader keeps.
func TestFrameReaderLargeFrames(t *testing.T) {
	var stream []byte
	var want [][]byte
	for i, n := range []int{20000, 70000, 20000, 2 << 20, 10, 40000} {
		f := appendFrame(nil, 'd', bytes.Repeat([]byte{byte('a' + i)}, n))
		want = append(want, f)
		stream = append(stream, f...)
	}
	fr := newFrameReader(iotest.HalfReader(bytes.NewReader(stream)), 16<<10, 4<<20)
	for i, w := range want {
		_, got, err := fr.next()
		if err != nil || !bytes.Equal(got, w) {
			t.Fatalf("frame %d (%d bytes): got %d bytes, %v", i, len(w), len(got), err)
		}
	}
	if cap(fr.large) > 1<<20 {
		t.Fatalf("reader kept a %d-byte buffer after a huge frame", cap(fr.large))
	}
}

func TestFrameHelpers(t *testing.T) {
	f := appendFrame([]byte("prefix"), 'C', []byte("SELECT 1\x00"))
	if got := f[6:]; !bytes.Equal(got, []byte("C\x00\x00\x00\x0dSELECT 1\x00")) {
		t.Fatalf("appendFrame: %q", got)
	}
	if got := body(f[6:]); string(got) != "SELECT 1\x00" {
		t.Fatalf("body: %q", got)
	}
	s, rest, ok := cstring([]byte("abc\x00def"))
	if !ok || s != "abc" || string(rest) != "def" {
		t.Fatalf("cstring: %q %q %v", s, rest, ok)
	}
	if _, _, ok := cstring([]byte("no terminator")); ok {
		t.Fatal("cstring accepted a string without NUL")
	}
	fr := newFrameReader(bytes.NewReader(bytes.Join(testFrames(), nil)), 4096, 1<<20)
	if _, _, err := fr.next(); err != nil {
		t.Fatal(err)
	}
	if fr.buffered() == 0 {
		t.Fatal("buffered() = 0 with frames left in the buffer")
	}
}

// timeoutEvery is a reader that fails with a deadline error before every
// other read, as a socket does when an inline relay's deadline passes
// (inline.go).
type timeoutEvery struct {
	r    io.Reader
	fail bool
}

func (t *timeoutEvery) Read(p []byte) (int, error) {
	t.fail = !t.fail
	if t.fail {
		return 0, os.ErrDeadlineExceeded
	}
	return t.r.Read(p)
}

// TestFrameReaderResumesAfterTimeout: a timeout in the middle of any
// frame, small or larger than the buffer, loses no byte; the next call
// goes on with the same frame.
func TestFrameReaderResumesAfterTimeout(t *testing.T) {
	var stream []byte
	var want [][]byte
	for i, n := range []int{10, 20000, 70000, 3, 40000} {
		f := appendFrame(nil, 'D', bytes.Repeat([]byte{byte('a' + i)}, n))
		want = append(want, f)
		stream = append(stream, f...)
	}
	fr := newFrameReader(&timeoutEvery{r: iotest.OneByteReader(bytes.NewReader(stream))}, 16<<10, 1<<20)
	timeouts := 0
	for i, w := range want {
		for {
			_, got, err := fr.next()
			if isTimeout(err) {
				timeouts++
				continue
			}
			if err != nil || !bytes.Equal(got, w) {
				t.Fatalf("frame %d (%d bytes): got %d bytes, %v", i, len(w), len(got), err)
			}
			break
		}
	}
	if timeouts < len(stream) {
		t.Fatalf("only %d timeouts for %d bytes: the test did not interrupt every read", timeouts, len(stream))
	}
}
