// Package testsrv starts throwaway PostgreSQL and redis-server processes
// from the machine's own binaries, for tests, benchmarks and demos.
//
// Every server listens on 127.0.0.1 on a random free port, keeps its files
// in a fresh temporary directory and is killed when the starting process
// dies (Linux). When running as root, PostgreSQL runs as the "postgres" OS
// user, since initdb and postgres refuse to run as root.
package testsrv
