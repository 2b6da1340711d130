//go:build !unix

package backup

import (
	"context"
	"os"
)

// lockFile is a no-op where flock is not available.
func lockFile(ctx context.Context, f *os.File) error { return nil }

func unlockFile(f *os.File) {}
