package proxy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/rs/zerolog"
)

// Relay-path benchmarks. The target: no allocation per relayed
// message in steady state. Run with
//
//	go test ./proxy -run '^$' -bench . -benchmem
//
// BenchmarkFrameReader measures the reader alone. BenchmarkRelay runs the
// real Server (listener, login, pools, request stages, pump) between a
// scripted PostgreSQL and a raw client, both written so that they allocate
// nothing per operation: the allocs/op it reports are the proxy's own.

// loopReader repeats data forever without allocating.
type loopReader struct {
	data []byte
	off  int
}

func (l *loopReader) Read(p []byte) (int, error) {
	n := copy(p, l.data[l.off:])
	l.off = (l.off + n) % len(l.data)
	return n, nil
}

func dataRow(cols ...string) []byte {
	var b []byte
	b = binary.BigEndian.AppendUint16(b, uint16(len(cols)))
	for _, c := range cols {
		b = binary.BigEndian.AppendUint32(b, uint32(len(c)))
		b = append(b, c...)
	}
	return appendFrame(nil, 'D', b)
}

func BenchmarkFrameReader(b *testing.B) {
	for _, size := range []int{20, 200, 2000, 40000} {
		b.Run("body="+strconv.Itoa(size), func(b *testing.B) {
			var stream []byte
			for len(stream) < 1<<20 {
				stream = append(stream, appendFrame(nil, 'D', bytes.Repeat([]byte{'x'}, size))...)
			}
			fr := newFrameReader(&loopReader{data: stream}, 16<<10, 1<<20)
			b.SetBytes(int64(size + 5))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, _, err := fr.next(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// scriptedPG is a minimal PostgreSQL: it accepts any login and answers
// every Query with queryResp and every Sync with syncResp, pre-encoded so
// that serving costs no allocation.
type scriptedPG struct {
	ln        net.Listener
	queryResp []byte
	syncResp  []byte
	wg        sync.WaitGroup
	mu        sync.Mutex
	conns     []net.Conn
}

func startScriptedPG(tb testing.TB, queryResp, syncResp []byte) *scriptedPG {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	pg := &scriptedPG{ln: ln, queryResp: queryResp, syncResp: syncResp}
	pg.wg.Add(1)
	go func() {
		defer pg.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			pg.mu.Lock()
			pg.conns = append(pg.conns, c)
			pg.mu.Unlock()
			pg.wg.Add(1)
			go func() { defer pg.wg.Done(); pg.serve(c) }()
		}
	}()
	tb.Cleanup(func() {
		ln.Close()
		pg.mu.Lock()
		for _, c := range pg.conns {
			c.Close()
		}
		pg.mu.Unlock()
		pg.wg.Wait()
	})
	return pg
}

func (pg *scriptedPG) serve(c net.Conn) {
	defer c.Close()
	be := pgproto3.NewBackend(c, c)
	msg, err := be.ReceiveStartupMessage()
	if err != nil {
		return
	}
	if _, ok := msg.(*pgproto3.StartupMessage); !ok {
		return // a cancel request: nothing to cancel here
	}
	var hello []byte
	hello, _ = (&pgproto3.AuthenticationOk{}).Encode(hello)
	for _, kv := range [][2]string{
		{"server_version", "15.0"}, {"client_encoding", "UTF8"}, {"DateStyle", "ISO, MDY"},
		{"TimeZone", "UTC"}, {"integer_datetimes", "on"}, {"standard_conforming_strings", "on"},
		{"IntervalStyle", "postgres"}, {"application_name", ""},
	} {
		hello, _ = (&pgproto3.ParameterStatus{Name: kv[0], Value: kv[1]}).Encode(hello)
	}
	hello, _ = (&pgproto3.BackendKeyData{ProcessID: 42, SecretKey: []byte{1, 2, 3, 4}}).Encode(hello)
	hello, _ = (&pgproto3.ReadyForQuery{TxStatus: 'I'}).Encode(hello)
	if _, err := c.Write(hello); err != nil {
		return
	}
	r := bufio.NewReaderSize(c, 64<<10)
	for {
		hdr, err := r.Peek(5)
		if err != nil {
			return
		}
		typ := hdr[0]
		n := int(binary.BigEndian.Uint32(hdr[1:5]))
		if _, err := r.Discard(n + 1); err != nil {
			return
		}
		switch typ {
		case 'Q':
			_, err = c.Write(pg.queryResp)
		case 'S':
			_, err = c.Write(pg.syncResp)
		case 'X':
			return
		}
		if err != nil {
			return
		}
	}
}

// benchResponse is SELECT-like output: RowDescription, rows DataRows,
// CommandComplete; the caller adds ReadyForQuery (and, for extended,
// ParseComplete/BindComplete first).
func benchResponse(rows int) []byte {
	rd := &pgproto3.RowDescription{Fields: []pgproto3.FieldDescription{
		{Name: []byte("aid"), DataTypeOID: 23, DataTypeSize: 4, TypeModifier: -1},
		{Name: []byte("filler"), DataTypeOID: 25, DataTypeSize: -1, TypeModifier: -1},
	}}
	out, _ := rd.Encode(nil)
	for i := 0; i < rows; i++ {
		out = append(out, dataRow(strconv.Itoa(100000+i), "abcdefghijklmnopqrstuvwxyz0123456789")...)
	}
	out, _ = (&pgproto3.CommandComplete{CommandTag: []byte("SELECT " + strconv.Itoa(rows))}).Encode(out)
	return out
}

func BenchmarkRelay(b *testing.B) {
	const rows = 10
	ready, _ := (&pgproto3.ReadyForQuery{TxStatus: 'I'}).Encode(nil)
	queryResp := append(benchResponse(rows), ready...)
	syncResp := append([]byte{'1', 0, 0, 0, 4, '2', 0, 0, 0, 4}, queryResp...) // ParseComplete, BindComplete
	query, _ := (&pgproto3.Query{String: "SELECT aid, filler FROM t LIMIT 10"}).Encode(nil)
	var ext []byte
	ext, _ = (&pgproto3.Parse{Query: "SELECT aid, filler FROM t WHERE aid > $1 LIMIT 10", ParameterOIDs: []uint32{23}}).Encode(ext)
	ext, _ = (&pgproto3.Bind{Parameters: [][]byte{[]byte("1")}, ParameterFormatCodes: []int16{0}}).Encode(ext)
	ext, _ = (&pgproto3.Describe{ObjectType: 'P'}).Encode(ext)
	ext, _ = (&pgproto3.Execute{}).Encode(ext)
	ext, _ = (&pgproto3.Sync{}).Encode(ext)

	for _, mode := range []string{"session", "transaction"} {
		for _, proto := range []string{"simple", "extended"} {
			b.Run(mode+"/"+proto, func(b *testing.B) {
				pg := startScriptedPG(b, queryResp, syncResp)
				cli := loginBenchClient(b, pg.ln.Addr().(*net.TCPAddr), mode)
				send, want := query, queryResp
				if proto == "extended" {
					send, want = ext, syncResp
				}
				buf := make([]byte, len(want))
				roundTrip := func() {
					if _, err := cli.Write(send); err != nil {
						b.Fatal(err)
					}
					if _, err := io.ReadFull(cli, buf); err != nil {
						b.Fatal(err)
					}
				}
				// The proxy relays bytes unchanged: check once, then time.
				for i := 0; i < 100; i++ {
					roundTrip()
				}
				if !bytes.Equal(buf, want) {
					b.Fatalf("relayed reply differs from the server's:\n got %q\nwant %q", buf, want)
				}
				msgs := rows + 3
				if proto == "extended" {
					msgs += 2
				}
				b.SetBytes(int64(len(want)))
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					roundTrip()
				}
				b.StopTimer()
				b.ReportMetric(float64(msgs), "msgs/op")
			})
		}
	}
}

// loginBenchClient starts a Server in front of the scripted PostgreSQL and
// logs a raw client in through it.
func loginBenchClient(b *testing.B, pgAddr *net.TCPAddr, mode string) net.Conn {
	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.Auth.Method = "trust"
	cfg.Pool.Mode = mode
	cfg.Pool.DefaultPoolSize = 2
	cfg.Databases = []DatabaseConfig{{Name: "*", Host: "127.0.0.1", Port: pgAddr.Port, SSLMode: "disable"}}
	if err := cfg.Validate(); err != nil {
		b.Fatal(err)
	}
	srv, err := New(cfg, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		b.Fatal(err)
	}
	go srv.Serve()
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	c, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	fe := pgproto3.NewFrontend(c, c)
	fe.Send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber,
		Parameters: map[string]string{"user": "bench", "database": "bench"}})
	if err := fe.Flush(); err != nil {
		b.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	for {
		msg, err := fe.Receive()
		if err != nil {
			b.Fatal(err)
		}
		if e, ok := msg.(*pgproto3.ErrorResponse); ok {
			b.Fatalf("login: %s %s", e.Code, e.Message)
		}
		if _, ok := msg.(*pgproto3.ReadyForQuery); ok {
			break
		}
	}
	c.SetDeadline(time.Time{})
	return c
}
