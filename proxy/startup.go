package proxy

import (
	"encoding/binary"
	"fmt"
	"io"
	"strings"
)

// Startup packet codes and limits, as in PostgreSQL's pqcomm.h.
const (
	maxStartupPacketLength = 10000 // MAX_STARTUP_PACKET_LENGTH
	sslRequestCode         = 80877103
	gssEncRequestCode      = 80877104
	cancelRequestCode      = 80877102
	protocolMajor          = 3
	protocolMinor          = 0
)

// startupPacket is what arrives before the first typed message.
type startupPacket struct {
	code   uint32 // protocol version or one of the request codes
	params map[string]string
	// unknownOptions are _pq_. protocol options we don't support; they go
	// back in NegotiateProtocolVersion, as PostgreSQL does.
	unknownOptions []string
	cancelPID      uint32
	cancelKey      []byte
}

// readStartupPacket reads one untyped packet: SSLRequest, GSSENCRequest,
// CancelRequest or StartupMessage.
func readStartupPacket(r io.Reader) (*startupPacket, error) {
	var hdr [8]byte
	if _, err := io.ReadFull(r, hdr[:4]); err != nil {
		return nil, err
	}
	n := int(int32(binary.BigEndian.Uint32(hdr[:4])))
	if n < 8 || n > maxStartupPacketLength {
		return nil, fatal(codeProtocolViolation, "invalid length of startup packet")
	}
	buf := make([]byte, n-4)
	if _, err := io.ReadFull(r, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("incomplete startup packet: %w", err)
	}
	sp := &startupPacket{code: binary.BigEndian.Uint32(buf[:4])}
	rest := buf[4:]
	switch sp.code {
	case sslRequestCode, gssEncRequestCode:
		return sp, nil
	case cancelRequestCode:
		if len(rest) < 8 || len(rest) > 256 {
			return nil, fatal(codeProtocolViolation, "invalid length of cancel request packet")
		}
		sp.cancelPID = binary.BigEndian.Uint32(rest[:4])
		sp.cancelKey = append([]byte(nil), rest[4:]...)
		return sp, nil
	}
	major, minor := sp.code>>16, sp.code&0xffff
	if major != protocolMajor {
		return nil, fatal(codeFeatureNotSupported, fmt.Sprintf(
			"unsupported frontend protocol %d.%d: server supports %d.0 to %d.%d",
			major, minor, protocolMajor, protocolMajor, protocolMinor))
	}
	sp.params = map[string]string{}
	for len(rest) > 0 && rest[0] != 0 {
		k, r2, ok := cstring(rest)
		if !ok {
			return nil, fatal(codeProtocolViolation, "invalid startup packet layout: expected terminator as last byte")
		}
		v, r3, ok := cstring(r2)
		if !ok {
			return nil, fatal(codeProtocolViolation, "invalid startup packet layout: expected terminator as last byte")
		}
		rest = r3
		if strings.HasPrefix(k, "_pq_.") {
			sp.unknownOptions = append(sp.unknownOptions, k)
			continue
		}
		sp.params[k] = v
	}
	if len(rest) != 1 {
		return nil, fatal(codeProtocolViolation, "invalid startup packet layout: expected terminator as last byte")
	}
	if sp.params["user"] == "" {
		return nil, fatal(codeInvalidAuthorization, "no PostgreSQL user name specified in startup packet")
	}
	return sp, nil
}

// minor is the protocol minor version the client asked for.
func (sp *startupPacket) minor() uint32 { return sp.code & 0xffff }

// sessionParams are the settings a client asked for at startup, keys lower
// case: everything but the connection-level keys, with `options` unpacked
// (-c name=value and --name=value, as PostgreSQL's pg_split_opts reads it).
func (sp *startupPacket) sessionParams() (map[string]string, error) {
	out := map[string]string{}
	for k, v := range sp.params {
		switch k {
		case "user", "database", "replication":
			continue
		case "options":
			opts, err := splitOptions(v)
			if err != nil {
				return nil, err
			}
			for ok, ov := range opts {
				out[ok] = ov
			}
		default:
			out[strings.ToLower(k)] = v
		}
	}
	return out, nil
}

// splitOptions parses the libpq `options` string: words separated by
// whitespace, backslash escapes the next character.
func splitOptions(s string) (map[string]string, error) {
	var words []string
	var cur strings.Builder
	inWord, esc := false, false
	for _, c := range s {
		switch {
		case esc:
			cur.WriteRune(c)
			esc, inWord = false, true
		case c == '\\':
			esc = true
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	out := map[string]string{}
	for i := 0; i < len(words); i++ {
		w := words[i]
		var kv string
		switch {
		case w == "-c" && i+1 < len(words):
			i++
			kv = words[i]
		case strings.HasPrefix(w, "-c"):
			kv = w[2:]
		case strings.HasPrefix(w, "--"):
			kv = w[2:]
		default:
			return nil, fatal("42601", fmt.Sprintf("invalid command-line argument for server process: %s", w))
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fatal("42601", fmt.Sprintf("-c %s requires a value", kv))
		}
		out[strings.ToLower(strings.ReplaceAll(k, "-", "_"))] = v
	}
	return out, nil
}

// appendNegotiateProtocolVersion tells a 3.x (x>0) client we speak 3.0 and
// which _pq_ options we did not recognise.
func appendNegotiateProtocolVersion(dst []byte, unknown []string) []byte {
	start := len(dst)
	dst = append(dst, 'v', 0, 0, 0, 0)
	dst = binary.BigEndian.AppendUint32(dst, uint32(protocolMinor))
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(unknown)))
	for _, o := range unknown {
		dst = append(dst, o...)
		dst = append(dst, 0)
	}
	binary.BigEndian.PutUint32(dst[start+1:], uint32(len(dst)-start-1))
	return dst
}
