package proxy

import (
	"io"
	"sync"
)

// clientWriter buffers what goes to a client, like a bufio.Writer whose
// buffer is borrowed from a shared pool on the first Write and given back
// by the Flush that empties it: a client between requests holds no write
// buffer. As with bufio.Writer, the first write error sticks: every later
// Write and Flush returns it.
type clientWriter struct {
	w   io.Writer
	bp  *[]byte // the borrowed buffer, nil between flushes
	n   int     // bytes buffered in *bp
	err error
}

var clientWriteBufPool = sync.Pool{New: func() any {
	b := make([]byte, clientWriteBuffer)
	return &b
}}

func newClientWriter(w io.Writer) *clientWriter { return &clientWriter{w: w} }

// Reset discards anything buffered and the sticky error, and writes to w.
func (c *clientWriter) Reset(w io.Writer) {
	c.release()
	c.w, c.err = w, nil
}

// Write buffers p, writing out full buffers; a write at least a buffer
// long with nothing buffered goes straight to the connection.
func (c *clientWriter) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	done := 0
	for len(p) > 0 {
		if c.n == 0 && len(p) >= clientWriteBuffer {
			n, err := c.w.Write(p)
			done += n
			if err != nil {
				c.fail(err)
				return done, err
			}
			return done, nil
		}
		if c.bp == nil {
			c.bp = clientWriteBufPool.Get().(*[]byte)
		}
		m := copy((*c.bp)[c.n:], p)
		c.n += m
		done += m
		p = p[m:]
		if c.n == clientWriteBuffer {
			if err := c.writeOut(); err != nil {
				return done, err
			}
		}
	}
	return done, nil
}

// Flush writes what is buffered and gives the buffer back.
func (c *clientWriter) Flush() error {
	if c.err != nil {
		return c.err
	}
	err := c.writeOut()
	c.release()
	return err
}

func (c *clientWriter) writeOut() error {
	if c.n == 0 {
		return nil
	}
	_, err := c.w.Write((*c.bp)[:c.n])
	c.n = 0
	if err != nil {
		c.fail(err)
	}
	return err
}

func (c *clientWriter) fail(err error) {
	c.err = err
	c.release()
}

func (c *clientWriter) release() {
	if c.bp != nil {
		clientWriteBufPool.Put(c.bp)
		c.bp, c.n = nil, 0
	}
}
