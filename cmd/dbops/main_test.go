package main_test

import (
	"testing"

	"github.com/amanat/dbops/internal/testsrv"
)

// The CLI tests run the real binary against throwaway servers; testsrv.Main
// stops the servers the package's tests shared.
func TestMain(m *testing.M) { testsrv.Main(m) }
