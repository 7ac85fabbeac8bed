package pgcluster

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// userHZ is the unit of the CPU times in /proc/<pid>/stat: USER_HZ, 100 on every Linux
// architecture Go runs on.
const userHZ = 100

// CPUTime returns the CPU time (user and system) the server's processes have used so far: the
// postmaster with the children it has reaped, and its live children (backends, WAL writer,
// checkpointer, ...). Benchmarks take it before and after a load to say how much of the machine
// PostgreSQL used. It reads /proc, so it works on Linux only.
func (c *Cluster) CPUTime() (time.Duration, error) {
	info, ok, err := readPidFile(c.dataDir)
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, fmt.Errorf("%w: no postmaster.pid in %s", ErrNotRunning, c.dataDir)
	}
	return processTreeCPU(info.pid)
}

// processTreeCPU sums the CPU ticks of pid (its own and its reaped children's) and of its live
// children. A child reaped while the children are read would count in neither place (or in both),
// so the sum is taken again until the parent reaped nobody in between.
func processTreeCPU(pid int) (time.Duration, error) {
	st, err := readProcStat(pid)
	if err != nil {
		return 0, err
	}
	for attempt := 0; ; attempt++ {
		ticks := st.utime + st.stime + st.cutime + st.cstime
		entries, err := os.ReadDir("/proc")
		if err != nil {
			return 0, fmt.Errorf("error listing processes: %w", err)
		}
		for _, e := range entries {
			child, err := strconv.Atoi(e.Name())
			if err != nil || child == pid {
				continue
			}
			cs, err := readProcStat(child)
			if err != nil || cs.ppid != pid {
				continue // gone in between, or not ours
			}
			ticks += cs.utime + cs.stime
		}
		again, err := readProcStat(pid)
		if err != nil {
			return 0, err
		}
		if (again.cutime == st.cutime && again.cstime == st.cstime) || attempt == 4 {
			return time.Duration(ticks) * time.Second / userHZ, nil
		}
		st = again
	}
}

type procStat struct {
	ppid                         int
	utime, stime, cutime, cstime int64
}

// readProcStat reads the fields of /proc/<pid>/stat that CPUTime needs. The command name (field
// 2) may hold spaces and parentheses, so fields are counted after its last ')'.
func readProcStat(pid int) (procStat, error) {
	var st procStat
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return st, fmt.Errorf("error reading the CPU time of process %d: %w", pid, err)
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return st, fmt.Errorf("error reading the CPU time of process %d: unexpected /proc format", pid)
	}
	// After ')': state(3) ppid(4) ... utime(14) stime(15) cutime(16) cstime(17).
	f := strings.Fields(s[i+1:])
	if len(f) < 15 {
		return st, fmt.Errorf("error reading the CPU time of process %d: unexpected /proc format", pid)
	}
	num := func(k int) int64 { n, _ := strconv.ParseInt(f[k], 10, 64); return n }
	st.ppid = int(num(1))
	st.utime, st.stime, st.cutime, st.cstime = num(11), num(12), num(13), num(14)
	return st, nil
}
