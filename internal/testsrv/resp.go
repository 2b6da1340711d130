package testsrv

import (
	"context"

	goredis "github.com/redis/go-redis/v9"
)

// redisDo sends one command on a new connection, after AUTH when password is
// set, and returns the reply: string, int64, []any or nil.
func redisDo(ctx context.Context, addr, password string, args ...string) (any, error) {
	c := goredis.NewClient(&goredis.Options{Addr: addr, Password: password, Protocol: 2, MaxRetries: -1, PoolSize: 1})
	defer c.Close()
	a := make([]any, len(args))
	for i, s := range args {
		a[i] = s
	}
	v, err := c.Do(ctx, a...).Result()
	if err == goredis.Nil {
		return nil, nil
	}
	return v, err
}
