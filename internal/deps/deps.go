// Package deps pins the project's chosen dependencies in go.mod until the
// packages that use them land. Delete an import here once real code uses it.
package deps

import (
	_ "github.com/chromedp/chromedp"
	_ "github.com/jackc/pglogrepl"
	_ "github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/pgproto3"
	_ "github.com/klauspost/compress/zstd"
	_ "github.com/maypok86/otter/v2"
	_ "github.com/pganalyze/pg_query_go/v6"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/prometheus/common/expfmt"
	_ "github.com/redis/go-redis/v9"
	_ "github.com/rs/zerolog"
	_ "github.com/shirou/gopsutil/v4/cpu"
	_ "golang.org/x/sync/singleflight"
	_ "gopkg.in/yaml.v3"
)
