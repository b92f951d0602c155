package auth_test

import (
	"strings"
	"testing"
	"time"

	"github.com/sluice-proxy/sluice/proxy/auth"
	"gopkg.in/yaml.v3"
)

func TestConfig(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		wantErr []string // each must appear; none means valid
	}{
		{name: "defaults", yaml: `{}`},
		{name: "users of every kind", yaml: `
method: md5
mock_secret: shared-by-all-instances
users:
  - name: alice
    password: s3cret
  - name: bob
    password: md54a0a68b43b6cd5cf266fa02f196e2371
    server_password: real
  - name: carol
    password: SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=
auth_query:
  user: sluice_auth
  cache_ttl: 30s
  cache_size: 100
`},
		{name: "every problem at once", yaml: `
method: kerberos
users:
  - name: alice
    password: ""
  - name: alice
    password: SCRAM-SHA-256$nope
  - password: x
auth_query:
  user: sluice_auth
  query: ""
  database: ""
  cache_ttl: -1s
  cache_size: -1
`, wantErr: []string{
			"auth.method: unknown authentication method",
			"auth.users[0].password: empty password",
			"auth.users[1].name: duplicate user",
			"auth.users[1].password: SCRAM verifier",
			"auth.users[2].name: required",
			"auth.auth_query.query: required",
			"auth.auth_query.database: required",
			"auth.auth_query.cache_ttl: must be >= 0",
			"auth.auth_query.cache_size: must be >= 0",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := auth.DefaultConfig()
			dec := yaml.NewDecoder(strings.NewReader(tt.yaml))
			dec.KnownFields(true)
			if err := dec.Decode(&cfg); err != nil {
				t.Fatalf("decode: %v", err)
			}
			err := cfg.Validate()
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				secrets, err := cfg.Secrets()
				if err != nil || len(secrets) != len(cfg.Users) {
					t.Fatalf("Secrets = %v, %v", secrets, err)
				}
				if (cfg.NewAuthQuery(nil) != nil) != (cfg.AuthQuery.User != "") {
					t.Fatal("NewAuthQuery on/off does not follow auth_query.user")
				}
				return
			}
			if err == nil {
				t.Fatal("Validate accepted an invalid config")
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error lacks %q:\n%v", want, err)
				}
			}
			if strings.Contains(err.Error(), "nope") {
				t.Errorf("error echoes secret text: %v", err)
			}
		})
	}
	d := auth.DefaultConfig()
	if d.Method != "scram-sha-256" || d.AuthQuery.Query != auth.DefaultAuthQuery || d.AuthQuery.CacheTTL != time.Minute {
		t.Errorf("DefaultConfig = %+v", d)
	}
}
