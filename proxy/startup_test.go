package proxy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/jackc/pgx/v5/pgproto3"
)

// packet builds an untyped startup-phase packet: int32 length, int32 code,
// then payload.
func packet(code uint32, payload []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(8+len(payload)))
	b = binary.BigEndian.AppendUint32(b, code)
	return append(b, payload...)
}

// params encodes key/value pairs with the final terminator.
func params(kv ...string) []byte {
	var b []byte
	for _, s := range kv {
		b = append(b, s...)
		b = append(b, 0)
	}
	return append(b, 0)
}

func version(major, minor uint32) uint32 { return major<<16 | minor }

func TestReadStartupPacket(t *testing.T) {
	cancelKey := []byte{1, 2, 3, 4}
	longKey := bytes.Repeat([]byte{7}, 32) // protocol 3.2 allows keys up to 256 bytes
	cases := []struct {
		name     string
		in       []byte
		code     uint32
		params   map[string]string
		unknown  []string
		minor    uint32
		cancel   []byte
		wantCode string // SQLSTATE of a *pgError
		wantMsg  string // its exact message
		wantErr  error  // or an I/O error
	}{
		{name: "SSLRequest", in: packet(sslRequestCode, nil), code: sslRequestCode},
		{name: "GSSENCRequest", in: packet(gssEncRequestCode, nil), code: gssEncRequestCode},
		{name: "CancelRequest", in: packet(cancelRequestCode, append([]byte{0, 0, 0x30, 0x39}, cancelKey...)),
			code: cancelRequestCode, cancel: cancelKey},
		{name: "CancelRequest long key", in: packet(cancelRequestCode, append([]byte{0, 0, 0x30, 0x39}, longKey...)),
			code: cancelRequestCode, cancel: longKey},
		{name: "CancelRequest too short", in: packet(cancelRequestCode, []byte{0, 0, 0, 1}),
			wantCode: "08P01", wantMsg: "invalid length of cancel request packet"},
		{name: "protocol 3.0", in: packet(version(3, 0), params("user", "alice", "database", "db1", "application_name", "app", "options", "-c search_path=s1")),
			code:   version(3, 0),
			params: map[string]string{"user": "alice", "database": "db1", "application_name": "app", "options": "-c search_path=s1"}},
		{name: "protocol 3.0 user only", in: packet(version(3, 0), params("user", "bob")),
			code: version(3, 0), params: map[string]string{"user": "bob"}},
		{name: "protocol 3.2 with _pq_ options", in: packet(version(3, 2), params("user", "u", "_pq_.compression", "on", "_pq_.other", "1")),
			code: version(3, 2), minor: 2, params: map[string]string{"user": "u"}, unknown: []string{"_pq_.compression", "_pq_.other"}},
		{name: "protocol 2.0", in: packet(version(2, 0), params("user", "u")),
			wantCode: "0A000", wantMsg: "unsupported frontend protocol 2.0: server supports 3.0 to 3.0"},
		{name: "protocol 4.0", in: packet(version(4, 0), params("user", "u")),
			wantCode: "0A000", wantMsg: "unsupported frontend protocol 4.0: server supports 3.0 to 3.0"},
		{name: "protocol 3000.1", in: packet(version(3000, 1), nil),
			wantCode: "0A000", wantMsg: "unsupported frontend protocol 3000.1: server supports 3.0 to 3.0"},
		{name: "length 7", in: []byte{0, 0, 0, 7, 0, 3, 0}, wantCode: "08P01", wantMsg: "invalid length of startup packet"},
		{name: "length 0", in: []byte{0, 0, 0, 0}, wantCode: "08P01", wantMsg: "invalid length of startup packet"},
		{name: "negative length", in: []byte{0xff, 0xff, 0xff, 0xf0}, wantCode: "08P01", wantMsg: "invalid length of startup packet"},
		{name: "length over MAX_STARTUP_PACKET_LENGTH", in: []byte{0, 0, 0x27, 0x11}, wantCode: "08P01", wantMsg: "invalid length of startup packet"},
		{name: "missing user", in: packet(version(3, 0), params("database", "db")),
			wantCode: "28000", wantMsg: "no PostgreSQL user name specified in startup packet"},
		{name: "empty user", in: packet(version(3, 0), params("user", "")),
			wantCode: "28000", wantMsg: "no PostgreSQL user name specified in startup packet"},
		{name: "no parameters", in: packet(version(3, 0), []byte{0}),
			wantCode: "28000", wantMsg: "no PostgreSQL user name specified in startup packet"},
		{name: "missing final terminator", in: packet(version(3, 0), []byte("user\x00u\x00")),
			wantCode: "08P01", wantMsg: "invalid startup packet layout: expected terminator as last byte"},
		{name: "key without value", in: packet(version(3, 0), []byte("user\x00u\x00database")),
			wantCode: "08P01", wantMsg: "invalid startup packet layout: expected terminator as last byte"},
		{name: "value without terminator", in: packet(version(3, 0), []byte("user\x00u")),
			wantCode: "08P01", wantMsg: "invalid startup packet layout: expected terminator as last byte"},
		{name: "bytes after terminator", in: packet(version(3, 0), []byte("user\x00u\x00\x00junk")),
			wantCode: "08P01", wantMsg: "invalid startup packet layout: expected terminator as last byte"},
		{name: "empty stream", in: nil, wantErr: io.EOF},
		{name: "truncated length", in: []byte{0, 0}, wantErr: io.ErrUnexpectedEOF},
		{name: "truncated body", in: packet(version(3, 0), params("user", "alice"))[:12], wantErr: io.ErrUnexpectedEOF},
		{name: "length only", in: []byte{0, 0, 0, 40}, wantErr: io.ErrUnexpectedEOF},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, r := range []io.Reader{bytes.NewReader(tc.in), iotest.OneByteReader(bytes.NewReader(tc.in))} {
				sp, err := readStartupPacket(r)
				switch {
				case tc.wantCode != "":
					var pe *pgError
					if !errors.As(err, &pe) {
						t.Fatalf("got %v (%T), want a pgError %s", err, err, tc.wantCode)
					}
					if pe.Severity != "FATAL" || pe.Code != tc.wantCode || pe.Message != tc.wantMsg {
						t.Fatalf("got %s %s %q, want FATAL %s %q", pe.Severity, pe.Code, pe.Message, tc.wantCode, tc.wantMsg)
					}
				case tc.wantErr != nil:
					if !errors.Is(err, tc.wantErr) {
						t.Fatalf("got %v, want %v", err, tc.wantErr)
					}
				default:
					if err != nil {
						t.Fatalf("unexpected error: %v", err)
					}
					if sp.code != tc.code {
						t.Fatalf("code %d, want %d", sp.code, tc.code)
					}
					if tc.params != nil && !reflect.DeepEqual(sp.params, tc.params) {
						t.Fatalf("params %v, want %v", sp.params, tc.params)
					}
					if !reflect.DeepEqual(sp.unknownOptions, tc.unknown) {
						t.Fatalf("unknown options %v, want %v", sp.unknownOptions, tc.unknown)
					}
					if tc.params != nil && sp.minor() != tc.minor {
						t.Fatalf("minor %d, want %d", sp.minor(), tc.minor)
					}
					if tc.code == cancelRequestCode && (sp.cancelPID != 12345 || !bytes.Equal(sp.cancelKey, tc.cancel)) {
						t.Fatalf("cancel pid %d key %v", sp.cancelPID, sp.cancelKey)
					}
				}
			}
		})
	}
}

// TestReadStartupPacketSequence reads an SSLRequest followed by a
// StartupMessage from one stream, as a client sends them after 'N'.
func TestReadStartupPacketSequence(t *testing.T) {
	sm := &pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber, Parameters: map[string]string{"user": "u", "database": "d"}}
	b, err := sm.Encode(packet(sslRequestCode, nil))
	if err != nil {
		t.Fatal(err)
	}
	r := bytes.NewReader(b)
	sp, err := readStartupPacket(r)
	if err != nil || sp.code != sslRequestCode {
		t.Fatalf("first packet: %+v %v", sp, err)
	}
	sp, err = readStartupPacket(r)
	if err != nil || sp.params["user"] != "u" || sp.params["database"] != "d" {
		t.Fatalf("second packet: %+v %v", sp, err)
	}
	if r.Len() != 0 {
		t.Fatalf("%d bytes left unread", r.Len())
	}
}

func TestSplitOptions(t *testing.T) {
	cases := []struct {
		in      string
		want    map[string]string
		wantErr string
	}{
		{in: "", want: map[string]string{}},
		{in: "-c a=b", want: map[string]string{"a": "b"}},
		{in: "-ca=b", want: map[string]string{"a": "b"}},
		{in: "--a=b", want: map[string]string{"a": "b"}},
		{in: "  -c   TimeZone=UTC\t--statement-timeout=5s  -cwork_mem=64MB ",
			want: map[string]string{"timezone": "UTC", "statement_timeout": "5s", "work_mem": "64MB"}},
		{in: `-c search_path=my\ schema,public`, want: map[string]string{"search_path": "my schema,public"}},
		{in: `-c application_name=a\\b`, want: map[string]string{"application_name": `a\b`}},
		{in: `-c x=\-y`, want: map[string]string{"x": "-y"}},
		{in: "-c a=", want: map[string]string{"a": ""}},
		{in: "-c a=b=c", want: map[string]string{"a": "b=c"}},
		{in: "-c a=1 -c a=2", want: map[string]string{"a": "2"}},
		{in: "foo", wantErr: "42601 invalid command-line argument for server process: foo"},
		{in: "-c", wantErr: "42601"},
		{in: "-c a", wantErr: "42601 -c a requires a value"},
		{in: "-x a=b", wantErr: "42601 invalid command-line argument for server process: -x"},
	}
	for _, tc := range cases {
		got, err := splitOptions(tc.in)
		if tc.wantErr != "" {
			var pe *pgError
			if !errors.As(err, &pe) || !strings.HasPrefix(pe.Code+" "+pe.Message, tc.wantErr) {
				t.Errorf("splitOptions(%q): got %v, want %s", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("splitOptions(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestSessionParams(t *testing.T) {
	sp := &startupPacket{params: map[string]string{
		"user": "u", "database": "d", "replication": "false",
		"application_name": "app", "DateStyle": "ISO, DMY",
		"options": `-c TimeZone=Europe/Paris --search_path=a\ b`,
	}}
	got, err := sp.sessionParams()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"application_name": "app", "datestyle": "ISO, DMY", "timezone": "Europe/Paris", "search_path": "a b"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	sp.params["options"] = "bogus"
	if _, err := sp.sessionParams(); err == nil {
		t.Fatal("bad options accepted")
	}
}

func TestNegotiateProtocolVersion(t *testing.T) {
	b := appendNegotiateProtocolVersion([]byte("x"), []string{"_pq_.a", "_pq_.bb"})
	if b[0] != 'x' || b[1] != 'v' {
		t.Fatalf("type: %q", b[:2])
	}
	var msg pgproto3.NegotiateProtocolVersion
	if n := int(binary.BigEndian.Uint32(b[2:6])); n != len(b)-2 {
		t.Fatalf("length %d, frame has %d", n, len(b)-2)
	}
	if err := msg.Decode(b[6:]); err != nil {
		t.Fatal(err)
	}
	if msg.NewestMinorProtocol != 0 || strings.Join(msg.UnrecognizedOptions, ",") != "_pq_.a,_pq_.bb" {
		t.Fatalf("decoded %+v", msg)
	}
}
