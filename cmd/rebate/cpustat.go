package main

import (
	"bytes"
	"os"
	"strconv"
)

// cpuTicks is the machine's CPU time so far from /proc/stat, in clock ticks (USER_HZ, 100 a
// second on Linux): busy is user, nice, system, irq and softirq; steal is what the hypervisor gave
// to others. ok is false where /proc/stat cannot be read.
type cpuTicks struct {
	busy, steal uint64
	ok          bool
}

func readCPUTicks() cpuTicks {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTicks{}
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := bytes.Fields(line)
	if len(f) < 9 || string(f[0]) != "cpu" {
		return cpuTicks{}
	}
	var v [8]uint64
	for i := range v {
		n, err := strconv.ParseUint(string(f[i+1]), 10, 64)
		if err != nil {
			return cpuTicks{}
		}
		v[i] = n
	}
	// user nice system idle iowait irq softirq steal
	return cpuTicks{busy: v[0] + v[1] + v[2] + v[5] + v[6], steal: v[7], ok: true}
}

// perEntry is the CPU the whole machine (this process, PostgreSQL and anything else running) spent
// between two readings, in microseconds per unit of work, and the steal in that window as a share
// of the time the CPUs were busy or stolen; ok is false when either reading failed or n is 0.
func (end cpuTicks) perEntry(start cpuTicks, n int) (busyMicros, stealShare float64, ok bool) {
	if !start.ok || !end.ok || n == 0 {
		return 0, 0, false
	}
	busy, steal := float64(end.busy-start.busy), float64(end.steal-start.steal)
	busyMicros = busy * 1e4 / float64(n) // a tick is 10 ms
	if busy+steal > 0 {
		stealShare = steal / (busy + steal)
	}
	return busyMicros, stealShare, true
}
