package integration

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/internal/testenv"
)

// selfSigned writes a self-signed certificate for 127.0.0.1 and localhost
// and its key; the certificate is its own CA for verify-full.
func selfSigned(t testing.TB) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "sluice test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func TestTLS(t *testing.T) {
	pg := testenv.PG(t)
	cert, key := selfSigned(t)
	cases := []struct {
		mode       string
		plainOK    bool
		preferUses bool // sslmode=prefer ends up on TLS
	}{
		{mode: "require", plainOK: false, preferUses: true},
		{mode: "allow", plainOK: true, preferUses: true},
		{mode: "disable", plainOK: true, preferUses: false},
	}
	for _, tc := range cases {
		t.Run(tc.mode, func(t *testing.T) {
			c := baseConf(t, "transaction")
			c.set("tls", map[string]any{"mode": tc.mode, "cert_file": cert, "key_file": key})
			s := startSluice(t, c.YAML(t))
			usesTLS := func(sslmode string, extra ...string) (bool, error) {
				dsn := s.DSN(pg.User, pg.Password, itDB, append([]string{"sslmode=" + sslmode}, extra...)...)
				if err := loginErr(dsn); err != nil {
					return false, err
				}
				conn := connect(t, dsn)
				_, isTLS := conn.PgConn().Conn().(*tls.Conn)
				if got := scalar[int](t, conn, "SELECT 1"); got != 1 {
					t.Fatal(got)
				}
				return isTLS, nil
			}
			if tc.mode != "disable" {
				for _, sslmode := range []string{"require", "verify-full"} {
					isTLS, err := usesTLS(sslmode, "sslrootcert="+cert)
					if err != nil || !isTLS {
						t.Fatalf("sslmode=%s: TLS %v, %v", sslmode, isTLS, err)
					}
				}
			} else if _, err := usesTLS("require"); err == nil {
				t.Fatal("sslmode=require succeeded with tls.mode disable")
			}
			isTLS, err := usesTLS("prefer")
			if err != nil || isTLS != tc.preferUses {
				t.Fatalf("sslmode=prefer: TLS %v, %v", isTLS, err)
			}
			isTLS, err = usesTLS("disable")
			if tc.plainOK {
				if err != nil || isTLS {
					t.Fatalf("sslmode=disable: TLS %v, %v", isTLS, err)
				}
			} else {
				wantPgErr(t, err, "28000", "")
			}
		})
	}
}
