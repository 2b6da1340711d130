package main

import (
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
)

// poolBench are the settings of -only pool: its size and the profiles to
// write (to see where a no-change cycle's dbops CPU and memory go).
type poolBench struct {
	stacks                 int
	only                   string
	cpuProfile, memProfile string
}

func profileName(base, variant string) string {
	r := strings.NewReplacer(" ", "_", ",", "", "(", "", ")", "")
	return base + "." + r.Replace(variant)
}

// startCPU profiles until the returned func is called.
func (po poolBench) startCPU(variant string) (func(), error) {
	if po.cpuProfile == "" {
		return func() {}, nil
	}
	f, err := os.Create(profileName(po.cpuProfile, variant))
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// heap prints the Go heap in use (the pool's handles still held) and
// writes a heap profile when asked.
func (po poolBench) heap(variant string) error {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	_, rss, err := memory(os.Getpid())
	if err != nil {
		return err
	}
	fmt.Printf("      heap in use after the cycles (handles held): %.1f MB; process RSS %.1f MB\n", mb(int64(m.HeapInuse)), mb(rss))
	if po.memProfile == "" {
		return nil
	}
	f, err := os.Create(profileName(po.memProfile, variant))
	if err != nil {
		return err
	}
	defer f.Close()
	return pprof.WriteHeapProfile(f)
}
