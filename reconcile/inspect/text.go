package inspect

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/amanat/dbops/reconcile/render"
)

// Text prints the report for a person.
func Text(w io.Writer, r *Report) {
	fmt.Fprintf(w, "stack %s (inspected %s)\n", r.Stack, r.At.Format(time.RFC3339))
	if pg := r.Postgres; pg != nil {
		textPostgres(w, pg)
	}
	if rd := r.Redis; rd != nil {
		textRedis(w, rd)
	}
}

func textPostgres(w io.Writer, pg *Postgres) {
	fmt.Fprintf(w, "\npostgres %s", pg.Server)
	if pg.Version != "" {
		fmt.Fprintf(w, " (PostgreSQL %s)", pg.Version)
	}
	fmt.Fprintln(w)
	if pg.Error != "" {
		fmt.Fprintf(w, "  error: %s\n", pg.Error)
		return
	}
	fmt.Fprintf(w, "  database size: %s\n", render.HumanBytes(pg.DatabaseSize))
	if m := pg.Migrations; m != nil {
		if m.TableExists {
			fmt.Fprintf(w, "  migrations (%s, %s): level %s, %d applied\n", m.Format, m.Table, m.Level, m.Applied)
		} else {
			fmt.Fprintf(w, "  migrations (%s): no %s table: nothing applied\n", m.Format, m.Table)
		}
	}
	var conns []string
	var total int64
	for _, c := range pg.Connections {
		conns = append(conns, fmt.Sprintf("%d %s", c.Count, c.State))
		total += c.Count
	}
	fmt.Fprintf(w, "  connections: %d of max_connections %d (%s)\n", total, pg.MaxConnections, strings.Join(conns, ", "))
	fmt.Fprintf(w, "  tables: %d", pg.TablesTotal)
	if pg.TablesTotal > len(pg.Tables) {
		fmt.Fprintf(w, " (the %d largest shown)", len(pg.Tables))
	}
	fmt.Fprintln(w)
	width := 0
	for _, t := range pg.Tables {
		width = max(width, len(t.Schema)+1+len(t.Name))
	}
	for _, t := range pg.Tables {
		fmt.Fprintf(w, "    %-*s  %12d live rows  %10s\n", width, t.Schema+"."+t.Name, t.LiveRows, render.HumanBytes(t.TotalBytes))
	}
	if !pg.StatStatements {
		fmt.Fprintf(w, "  slowest statements: %s\n", pg.StatStatementsNote)
		return
	}
	fmt.Fprintf(w, "  slowest statements by mean time (pg_stat_statements, %d):\n", len(pg.Statements))
	for _, s := range pg.Statements {
		fmt.Fprintf(w, "    %10.2f ms mean  %8d calls  %s\n", s.MeanMillis, s.Calls, s.Query)
	}
}

func textRedis(w io.Writer, rd *Redis) {
	fmt.Fprintf(w, "\nredis %s", rd.Server)
	if rd.Version != "" {
		fmt.Fprintf(w, " (Redis %s)", rd.Version)
	}
	fmt.Fprintln(w)
	if rd.Error != "" {
		fmt.Fprintf(w, "  error: %s\n", rd.Error)
		return
	}
	m := rd.Memory
	limit := "no limit"
	if m.MaxMemory > 0 {
		limit = render.HumanBytes(m.MaxMemory)
	}
	fmt.Fprintf(w, "  memory: used %s, peak %s, maxmemory %s (%s), fragmentation ratio %.2f\n",
		render.HumanBytes(m.Used), render.HumanBytes(m.Peak), limit, m.Policy, m.Fragmentation)
	ratio := "no lookups yet"
	if rd.HitRatio != nil {
		ratio = fmt.Sprintf("%.1f%%", 100**rd.HitRatio)
	}
	fmt.Fprintf(w, "  keyspace hit ratio: %s (%d hits, %d misses); evicted keys %d; rejected connections %d\n",
		ratio, rd.KeyspaceHits, rd.KeyspaceMisses, rd.EvictedKeys, rd.RejectedConnections)
	if len(rd.Keyspace) == 0 {
		fmt.Fprintln(w, "  keys: none")
	}
	for _, d := range rd.Keyspace {
		fmt.Fprintf(w, "  keys in db %d: %d (%d with a TTL)\n", d.DB, d.Keys, d.Expires)
	}
	p := rd.Persistence
	aof := "off"
	if p.AOFEnabled {
		aof = "on, last write " + p.AOFLastWriteStatus + ", last rewrite " + p.AOFRewriteStatus
	}
	fmt.Fprintf(w, "  persistence: last RDB save %s (bgsave %s, %d changes since), AOF %s\n",
		p.RDBLastSave.Format(time.RFC3339), p.RDBLastBgsaveStatus, p.RDBChangesSinceSave, aof)
	if rd.SlowlogNote != "" {
		fmt.Fprintf(w, "  slow log: %s\n", rd.SlowlogNote)
		return
	}
	fmt.Fprintf(w, "  slow log (SLOWLOG GET 10, %d):\n", len(rd.Slowlog))
	for _, e := range rd.Slowlog {
		fmt.Fprintf(w, "    #%d %s %8d µs  %s\n", e.ID, e.Time.Format(time.RFC3339), e.Micros, strings.Join(e.Args, " "))
	}
}
