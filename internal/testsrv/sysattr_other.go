//go:build !linux

package testsrv

import "syscall"

// sysProcAttr: outside Linux there is no parent-death signal, and running
// the servers as another user is not supported.
func sysProcAttr(as *osUser) *syscall.SysProcAttr { return nil }
