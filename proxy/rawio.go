package proxy

import (
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"unsafe"
)

// rawConn does a plain socket's reads and writes with raw system calls on
// its non-blocking descriptor, parking in the netpoller (with deadlines
// honoured) only when the socket is not ready.
//
// Why: Go's ordinary socket I/O enters the scheduler around every system
// call (entersyscall/exitsyscall), and a write on loopback TCP runs the
// receiver's wake-up in the kernel, often long enough for sysmon to hand
// the P to another thread; each such handoff costs futex wake-ups and
// spinning threads. A proxy does several such calls per query, so on a
// small, busy machine this bookkeeping cost more CPU than the relay itself.
// Non-blocking read and write never sleep in the kernel, so they need none
// of it. TLS connections keep the standard path (they wrap the net.Conn).
//
// Each direction keeps its call state here and binds its callback once, so
// a call allocates nothing. A mutex per direction keeps net.Conn's promise
// that Writes (and Reads) never overlap: a server can pass to the next
// client while the previous one is still returning from its Write (the
// reply already came back), and that Write's state must not mix with the
// next one's. Uncontended, the lock costs a few nanoseconds.
type rawConn struct {
	net.Conn
	rc syscall.RawConn

	rmu   sync.Mutex
	rbuf  []byte
	lazy  *frameReader // set: read into its buffer, taken only once data is there
	rn    int
	rerr  syscall.Errno
	readF func(fd uintptr) bool

	// armed is written by the next Read before it waits (writeThenRead);
	// aerr is that write's failure.
	armed []byte
	aerr  syscall.Errno

	wmu    sync.Mutex
	wbuf   []byte
	wn     int
	werr   syscall.Errno
	writeF func(fd uintptr) bool
}

// newRawConn wraps c when it is a socket the raw path can drive; anything
// else (TLS, pipes in tests) is returned unchanged.
func newRawConn(c net.Conn) net.Conn {
	switch c.(type) {
	case *net.TCPConn, *net.UnixConn:
	default:
		return c
	}
	sc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		return c
	}
	r := &rawConn{Conn: c, rc: sc}
	r.readF = r.readFD
	r.writeF = r.writeFD
	return r
}

func (r *rawConn) readFD(fd uintptr) bool {
	if r.armed != nil {
		return r.writeArmed(fd)
	}
	if r.lazy != nil {
		r.rbuf = r.lazy.take()
	}
	for {
		n, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&r.rbuf[0])), uintptr(len(r.rbuf)))
		switch e {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			if r.lazy != nil {
				r.lazy.giveBack()
			}
			return false
		}
		r.rn, r.rerr = int(n), e
		return true
	}
}

// writeArmed writes the armed request from inside the read callback. All
// written, it reports false: the reply cannot be there yet, so the poller
// waits for it without a read that would only say EAGAIN, and since the
// poller's readiness was reset before this call, the reply's wake-up is
// never missed. A full socket or an error ends the callback; Read finishes
// the write on the ordinary path or reports the error.
func (r *rawConn) writeArmed(fd uintptr) bool {
	for len(r.armed) > 0 {
		n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&r.armed[0])), uintptr(len(r.armed)))
		switch e {
		case 0:
			r.armed = r.armed[n:]
		case syscall.EINTR:
		case syscall.EAGAIN:
			return true
		default:
			r.aerr = e
			return true
		}
	}
	r.armed = nil
	return false
}

// writeThenRead arms b to be written by the next Read, which then waits
// for the reply without a first, futile read. The caller owns the
// connection's writes until that Read returns. Empty b arms nothing.
func (r *rawConn) writeThenRead(b []byte) {
	if len(b) > 0 {
		r.armed = b
	}
}

// finishArmed completes an armed write on the ordinary path.
func (r *rawConn) finishArmed() error {
	b, e := r.armed, r.aerr
	r.armed, r.aerr = nil, 0
	if e != 0 {
		return &net.OpError{Op: "write", Net: r.LocalAddr().Network(), Source: r.LocalAddr(), Addr: r.RemoteAddr(), Err: os.NewSyscallError("write", e)}
	}
	if len(b) > 0 {
		_, err := r.Write(b)
		return err
	}
	return nil
}

// Read reads like net.Conn.Read: io.EOF at end of stream, the net package's
// errors for deadlines and a closed connection.
func (r *rawConn) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	r.rmu.Lock()
	defer r.rmu.Unlock()
	r.rbuf = b
	return r.read()
}

// readLazy reads into fr's buffer from its end, borrowing the buffer only
// when the socket has data and giving it back before the goroutine parks
// for more (frame.go).
func (r *rawConn) readLazy(fr *frameReader) (int, error) {
	r.rmu.Lock()
	defer r.rmu.Unlock()
	r.lazy = fr
	n, err := r.read()
	r.lazy = nil
	return n, err
}

// read runs a Read with its target (rbuf or lazy) set.
func (r *rawConn) read() (int, error) {
	r.rn, r.rerr = 0, 0
	err := r.rc.Read(r.readF)
	if r.armed != nil || r.aerr != 0 {
		// The armed write did not complete in the callback: a full
		// socket, a failed write, or a deadline that passed before the
		// callback ran. Finish it; if the callback ended for the write,
		// nothing was read yet.
		if werr := r.finishArmed(); werr != nil {
			r.rbuf = nil
			return 0, werr
		}
		if err == nil {
			err = r.rc.Read(r.readF)
		}
	}
	r.rbuf = nil
	switch {
	case err != nil:
		return 0, err
	case r.rerr != 0:
		return 0, &net.OpError{Op: "read", Net: r.LocalAddr().Network(), Source: r.LocalAddr(), Addr: r.RemoteAddr(), Err: os.NewSyscallError("read", r.rerr)}
	case r.rn == 0:
		return 0, io.EOF
	}
	return r.rn, nil
}

func (r *rawConn) writeFD(fd uintptr) bool {
	for r.wn < len(r.wbuf) {
		n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&r.wbuf[r.wn])), uintptr(len(r.wbuf)-r.wn))
		switch e {
		case 0:
			r.wn += int(n)
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			r.werr = e
			return true
		}
	}
	return true
}

// Write writes all of b or fails, like net.Conn.Write.
func (r *rawConn) Write(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	r.wmu.Lock()
	defer r.wmu.Unlock()
	r.wbuf, r.wn, r.werr = b, 0, 0
	err := r.rc.Write(r.writeF)
	r.wbuf = nil
	n := r.wn
	switch {
	case err != nil:
		return n, err
	case r.werr != 0:
		return n, &net.OpError{Op: "write", Net: r.LocalAddr().Network(), Source: r.LocalAddr(), Addr: r.RemoteAddr(), Err: os.NewSyscallError("write", r.werr)}
	}
	return n, nil
}
