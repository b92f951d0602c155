package monitor

import "time"

// Source is implemented by the proxy. Snapshot must return a consistent
// copy that monitor may keep; monitor calls it on demand (API requests) and
// on its sample and analysis timers, never per query.
type Source interface {
	Snapshot() Snapshot
}

// Snapshot is the proxy's view of pools and connections at one instant.
type Snapshot struct {
	Pools   []PoolStats   `json:"pools"`
	Clients []ClientStats `json:"clients"`
	Servers []ServerStats `json:"servers"`
	Totals  Totals        `json:"totals"`
	// MaxClientConn is the configured client connection limit (0: none).
	MaxClientConn int `json:"max_client_conn"`
}

// PoolStats mirrors a row of PgBouncer's SHOW POOLS for one (database,
// user) pool.
type PoolStats struct {
	Database          string        `json:"database"`
	User              string        `json:"user"`
	Mode              string        `json:"mode"`
	Size              int           `json:"size"`
	MinSize           int           `json:"min_size"`
	ClientsActive     int           `json:"clients_active"`
	ClientsWaiting    int           `json:"clients_waiting"`
	ServersActive     int           `json:"servers_active"`
	ServersIdle       int           `json:"servers_idle"`
	ServersIdleInTx   int           `json:"servers_idle_in_tx"`
	ServersConnecting int           `json:"servers_connecting"`
	MaxWait           time.Duration `json:"max_wait_ns"`
	TotalQueries      int64         `json:"total_queries"`
	TotalXacts        int64         `json:"total_xacts"`
}

// ClientStats is one client connection; State is the proxy's state name.
type ClientStats struct {
	ID              uint64    `json:"id"`
	Addr            string    `json:"addr"`
	Database        string    `json:"database"`
	User            string    `json:"user"`
	ApplicationName string    `json:"application_name"`
	State           string    `json:"state"`
	Since           time.Time `json:"since"`
}

// ServerStateActive is the server State the proxy reports while a query
// runs. A server whose TxStatus is 'T' or 'E' (ReadyForQuery status) and
// whose State is anything else is idle in a transaction since Since.
const ServerStateActive = "active"

// ServerStats is one backend connection. Since is when State last changed;
// TxStatus is the last ReadyForQuery status byte ('I', 'T', 'E').
type ServerStats struct {
	ID       uint64    `json:"id"`
	Addr     string    `json:"addr"`
	Database string    `json:"database"`
	User     string    `json:"user"`
	State    string    `json:"state"`
	Since    time.Time `json:"since"`
	TxStatus byte      `json:"tx_status"`
}

// idleInTx reports whether the server holds an open transaction while no
// query runs on it.
func (s ServerStats) idleInTx() bool {
	return (s.TxStatus == 'T' || s.TxStatus == 'E') && s.State != ServerStateActive
}

// Totals are proxy-wide: ClientsTotal and ServersTotal are the connections
// open now; Queries, Xacts and the byte counters are cumulative since start
// (the dashboard plots their rates).
type Totals struct {
	ClientsTotal int64 `json:"clients_total"`
	ServersTotal int64 `json:"servers_total"`
	Queries      int64 `json:"queries"`
	Xacts        int64 `json:"xacts"`
	BytesIn      int64 `json:"bytes_in"`
	BytesOut     int64 `json:"bytes_out"`
}

// CacheStats are the result cache's cumulative counters, read through
// Deps.CacheStats; the analysis works on their deltas.
type CacheStats struct {
	Hits          int64            `json:"hits"`
	Misses        int64            `json:"misses"`
	Fills         int64            `json:"fills"`
	Invalidations int64            `json:"invalidations"`
	Skips         map[string]int64 `json:"skips"` // by reason
	Entries       int64            `json:"entries"`
	Bytes         int64            `json:"bytes"`
}

// RedisStats describe the L2 cache's Redis. Errors and Evictions are
// cumulative (evicted_keys from INFO); Latency is a recent p99 or ping.
type RedisStats struct {
	Connected bool `json:"connected"`
	// Subscribed: the cache hears the other instances' invalidations. Until
	// it does (start, reconnect) it answers nothing from the cache.
	Subscribed bool          `json:"subscribed"`
	Latency    time.Duration `json:"latency_ns"`
	Errors     int64         `json:"errors"`
	Evictions  int64         `json:"evictions"`
	UsedMemory int64         `json:"used_memory"`
	MaxMemory  int64         `json:"maxmemory"` // 0: unlimited
}
