package backup

import "syscall"

// childAttr makes pg_dump and pg_restore die with dbops: after a kill -9
// of dbops they would otherwise run on as orphans, holding a snapshot and
// locks on the server. (The signal is tied to the thread that started the
// child; Go keeps that thread for unlocked goroutines.)
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
