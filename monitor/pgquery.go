package monitor

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// monitoring connections run every statement with the extended protocol
// (one statement per Parse, so a recorded example can never smuggle a
// second command) and return text rows.
func pgRows(ctx context.Context, c *pgconn.PgConn, sql string, args ...string) ([][]string, error) {
	params := make([][]byte, len(args))
	for i, a := range args {
		params[i] = []byte(a)
	}
	res := c.ExecParams(ctx, sql, params, nil, nil, nil).Read()
	if res.Err != nil {
		return nil, res.Err
	}
	out := make([][]string, len(res.Rows))
	for i, r := range res.Rows {
		out[i] = make([]string, len(r))
		for j, v := range r {
			out[i][j] = string(v)
		}
	}
	return out, nil
}

func pgExec(ctx context.Context, c *pgconn.PgConn, sql string, args ...string) error {
	_, err := pgRows(ctx, c, sql, args...)
	return err
}

// dialMonitor opens a monitoring connection with a statement timeout.
func dialMonitor(ctx context.Context, d Deps, database string, timeout time.Duration) (*pgconn.PgConn, error) {
	if d.Dial == nil {
		return nil, fmt.Errorf("no monitoring connection configured")
	}
	c, err := d.Dial(ctx, database)
	if err != nil {
		return nil, err
	}
	ms := strconv.FormatInt(timeout.Milliseconds(), 10)
	if err := pgExec(ctx, c, "SELECT set_config('statement_timeout', $1, false), set_config('application_name', 'sluice-monitor', false)", ms); err != nil {
		c.Close(context.Background())
		return nil, err
	}
	return c, nil
}

func atoi(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

func atof(s string) float64 {
	f, _ := strconv.ParseFloat(s, 64)
	return f
}
