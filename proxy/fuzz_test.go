package proxy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"
)

// FuzzClientReader feeds arbitrary bytes to what reads a client: the
// startup packet reader (as many packets as a client may send before its
// StartupMessage), the options splitter, then the frame reader for typed
// messages. None may panic, every frame returned must be consistent with
// its header, and memory stays bounded by the limits (startup packets by
// MAX_STARTUP_PACKET_LENGTH, frames by max_message_size).
// Seeds live in testdata/fuzz/FuzzClientReader; `make fuzz` runs it.
func FuzzClientReader(f *testing.F) {
	startup := func(kv map[string]string) []byte {
		b, _ := (&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber, Parameters: kv}).Encode(nil)
		return b
	}
	q := appendFrame(nil, 'Q', []byte("SELECT 1\x00"))
	f.Add(append(startup(map[string]string{"user": "u", "database": "d"}), q...))
	f.Add(append(packet(sslRequestCode, nil), startup(map[string]string{"user": "u", "options": `-c a=b --c-d=e\ f`})...))
	f.Add(packet(cancelRequestCode, []byte{0, 0, 0, 1, 1, 2, 3, 4}))
	f.Add(packet(version(3, 2), params("user", "u", "_pq_.x", "1")))
	f.Add(packet(version(4, 0), params("user", "u")))
	f.Add(append(startup(map[string]string{"user": "u"}), 'y', 0, 0, 0, 4))
	f.Add(append(startup(map[string]string{"user": "u"}), 'Q', 0xff, 0xff, 0xff, 0xff))
	f.Add(append(startup(map[string]string{"user": "u"}), 'P', 0, 0, 0, 2))
	f.Add([]byte{0, 0, 0, 8, 4, 0xd2, 0x16, 0x2f})
	f.Fuzz(func(t *testing.T, data []byte) {
		const maxMsg = 64 << 10
		r := bytes.NewReader(data)
		var sp *startupPacket
		var err error
		// A client may send SSLRequest and GSSENCRequest before its
		// StartupMessage; login loops the same way.
		for i := 0; i < 4; i++ {
			sp, err = readStartupPacket(r)
			if err != nil || (sp.code != sslRequestCode && sp.code != gssEncRequestCode) {
				break
			}
		}
		if err != nil {
			var pe *pgError
			if !errors.As(err, &pe) && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("startup error is neither a pgError nor EOF: %v", err)
			}
			return
		}
		if sp.code>>16 == protocolMajor && sp.params["user"] == "" {
			t.Fatalf("startup packet without user accepted: %+v", sp)
		}
		if sp.params != nil {
			sp.sessionParams()
		}
		fr := newFrameReader(r, 16<<10, maxMsg)
		for {
			typ, frame, err := fr.next()
			if err != nil {
				var fe *frameError
				if !errors.As(err, &fe) && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("frame error of unexpected kind: %v", err)
				}
				return
			}
			if len(frame) < 5 || frame[0] != typ || int(binary.BigEndian.Uint32(frame[1:5]))+1 != len(frame) || len(frame)-5 > maxMsg {
				t.Fatalf("inconsistent frame: type %c, %d bytes, header %v", typ, len(frame), frame[:min(5, len(frame))])
			}
		}
	})
}
