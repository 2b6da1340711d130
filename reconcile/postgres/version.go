package postgres

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/stdlib"
)

// ServerVersion opens (or reuses) a session of db and returns the server's
// version as it reported it when the session started (ParameterStatus
// server_version) and its number as server_version_num spells it. Like
// libpq's PQserverVersion it costs no statement: at fleet size a statement
// in a fresh session is a tenth of a stack's plan. Getting the session is
// the connection check. A version that cannot be read that way is asked.
func ServerVersion(ctx context.Context, db *sql.DB) (string, int, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return "", 0, err
	}
	defer conn.Close()
	var version string
	err = conn.Raw(func(dc any) error {
		c, ok := dc.(*stdlib.Conn)
		if !ok {
			return errors.New("not a pgx session")
		}
		version = c.Conn().PgConn().ParameterStatus("server_version")
		return nil
	})
	if err == nil {
		if num, ok := VersionNum(version); ok {
			return version, num, nil
		}
	}
	var num int
	if err := conn.QueryRowContext(ctx, "SELECT current_setting('server_version'), current_setting('server_version_num')::int").Scan(&version, &num); err != nil {
		return "", 0, err
	}
	return version, num, nil
}

// VersionNum turns a server_version ("15.14 (Debian 15.14-1)", "18beta1",
// "9.6.24") into server_version_num (150014, 180000, 90624) as libpq does:
// from PostgreSQL 10 on, major*10000 + minor; before, the three parts.
func VersionNum(version string) (int, bool) {
	end := strings.IndexFunc(version, func(r rune) bool { return r != '.' && (r < '0' || r > '9') })
	if end >= 0 {
		version = version[:end]
	}
	parts := strings.Split(version, ".")
	nums := make([]int, 3)
	for i, p := range parts {
		if i >= 3 {
			break
		}
		n, err := strconv.Atoi(p)
		if err != nil {
			return 0, false
		}
		nums[i] = n
	}
	if nums[0] >= 10 {
		if len(parts) > 2 {
			return 0, false
		}
		return nums[0]*10000 + nums[1], true
	}
	if nums[0] == 0 {
		return 0, false
	}
	return nums[0]*10000 + nums[1]*100 + nums[2], true
}
