//go:build unix

package backup

import (
	"fmt"
	"os"
	"syscall"
)

// chownLike gives path the owner of dir when they differ (dbops run as
// root restoring into a folder of the redis user); others cannot chown.
func chownLike(path, dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || os.Getuid() != 0 || int(st.Uid) == 0 {
		return nil
	}
	if err := os.Chown(path, int(st.Uid), int(st.Gid)); err != nil {
		return fmt.Errorf("give %s to the owner of %s: %w", path, dir, err)
	}
	return nil
}
