package testsrv

import "syscall"

// sysProcAttr makes the child die with us and, when as is set, run as that
// user (Go sets Pdeathsig after changing credentials, so it survives).
func sysProcAttr(as *osUser) *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if as != nil {
		a.Credential = &syscall.Credential{Uid: as.uid, Gid: as.gid, Groups: []uint32{}}
	}
	return a
}
