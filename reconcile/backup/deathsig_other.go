//go:build !linux

package backup

import "syscall"

// childAttr: a parent-death signal is Linux only.
func childAttr() *syscall.SysProcAttr { return nil }
