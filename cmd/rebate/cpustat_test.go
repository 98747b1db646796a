package main

import (
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCPUTicks(t *testing.T) {
	if _, err := os.Stat("/proc/stat"); err == nil {
		now := readCPUTicks()
		require.True(t, now.ok)
		require.NotZero(t, now.busy)
	}
	start := cpuTicks{busy: 1000, steal: 10, ok: true}
	end := cpuTicks{busy: 1300, steal: 110, ok: true}
	us, steal, ok := end.perEntry(start, 600)
	require.True(t, ok)
	require.InDelta(t, 5000.0, us, 1e-9) // 300 ticks of 10 ms over 600 entries
	require.InDelta(t, 0.25, steal, 1e-9)
	_, _, ok = end.perEntry(cpuTicks{}, 600)
	require.False(t, ok)
	_, _, ok = end.perEntry(start, 0)
	require.False(t, ok)
}
