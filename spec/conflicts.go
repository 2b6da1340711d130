package spec

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	goredis "github.com/redis/go-redis/v9"
)

// checkConflicts reports stacks that manage the same thing: the migrations
// of one Postgres database, or one CONFIG parameter of one Redis server.
// Two such stacks would undo each other's changes on every cycle. Servers
// are compared by host:port (and database) after ${VAR} expansion; a URL
// whose variable is unset (validate) is compared as written, and when that
// cannot tell, a warning says so.
func checkConflicts(stacks []Stack) (errs ErrorList, warns []FieldError) {
	if len(stacks) < 2 {
		return nil, nil
	}
	type owner struct{ stack, file string }
	seen := map[string]owner{}
	claim := func(st *Stack, field, key, what string) {
		if prev, ok := seen[key]; ok {
			errs = append(errs, FieldError{File: st.File, Stack: st.Metadata.Name, Field: field,
				Msg: fmt.Sprintf("%s is also managed by stack %q (%s): two stacks would undo each other's changes; manage it in one stack", what, prev.stack, prev.file)})
			return
		}
		seen[key] = owner{st.Metadata.Name, st.File}
	}
	unset := func(st *Stack, field string) {
		warns = append(warns, FieldError{File: st.File, Stack: st.Metadata.Name, Field: field,
			Msg: "not compared with the other stacks' servers (a variable is unset): plan checks that no two stacks manage the same thing"})
	}
	for i := range stacks {
		st := &stacks[i]
		if pg := st.Spec.Postgres; pg != nil && pg.Migrations != nil {
			db, known := postgresDatabase(pg.URL)
			if !known {
				unset(st, "spec.postgres.url")
			}
			claim(st, "spec.postgres.url", "postgres "+db, db)
		}
		if r := st.Spec.Redis; r != nil && len(r.Config) > 0 {
			addr, known := redisServer(r.URL)
			if !known {
				unset(st, "spec.redis.url")
			}
			for _, name := range sortedKeys(r.Config) {
				claim(st, "spec.redis.config."+name, "redis "+addr+" "+strings.ToLower(name), addr+" "+name)
			}
		}
	}
	return errs, warns
}

// postgresDatabase is host:port/database of a postgres URL as pgx reads it
// (defaults included); known is false when ${VAR} is still in it, and the
// text as written (redacted) stands for it.
func postgresDatabase(raw string) (id string, known bool) {
	if strings.Contains(raw, "${") {
		return RedactText(raw), false
	}
	cfg, err := pgconn.ParseConfig(raw)
	if err != nil {
		return Redact(raw), true
	}
	return net.JoinHostPort(strings.ToLower(cfg.Host), strconv.Itoa(int(cfg.Port))) + "/" + cfg.Database, true
}

// redisServer is host:port of a redis URL (the database number does not
// matter: CONFIG is server-wide).
func redisServer(raw string) (addr string, known bool) {
	if strings.Contains(raw, "${") {
		return RedactText(raw), false
	}
	opt, err := goredis.ParseURL(raw)
	if err != nil {
		return Redact(raw), true
	}
	return strings.ToLower(opt.Addr), true
}
