package metrics

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/hawk-agents/hawk/internal/promtext"
)

// userHZ is the unit of /proc's CPU times and start time (sysconf CLK_TCK, 100 on
// every Linux), as procfs assumes too.
const userHZ = 100

// process is the process's metrics (process_*), the names, help texts and types of
// client_golang's process collector, read from /proc/self at each scrape.
type process struct {
	cpu, vsize, rss, start, fds, maxFDs, maxVsize, in, out float64
}

func (p *process) snapshot() {
	*p = process{}
	if b, err := os.ReadFile("/proc/self/stat"); err == nil {
		// The fields after the command, which is in parentheses and may hold spaces:
		// f[0] is the state (field 3), so field n is f[n-3].
		if i := bytes.LastIndexByte(b, ')'); i > 0 {
			f := strings.Fields(string(b[i+1:]))
			if len(f) > 21 {
				p.cpu = (atof(f[11]) + atof(f[12])) / userHZ
				p.vsize = atof(f[20])
				p.rss = atof(f[21]) * float64(os.Getpagesize())
				p.start = bootTime() + atof(f[19])/userHZ
			}
		}
	}
	if n, err := countEntries("/proc/self/fd"); err == nil {
		p.fds = float64(n)
	}
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) == nil {
		p.maxFDs = float64(l.Cur)
	}
	if syscall.Getrlimit(syscall.RLIMIT_AS, &l) == nil {
		p.maxVsize = float64(l.Cur)
	}
	p.in, p.out = ipOctets()
}

func registerProcess(r *promtext.Registry) {
	p := &process{}
	r.OnWrite(p.snapshot)
	r.CounterFunc("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", func() float64 { return p.cpu })
	r.GaugeFunc("process_max_fds", "Maximum number of open file descriptors.", func() float64 { return p.maxFDs })
	r.CounterFunc("process_network_receive_bytes_total", "Number of bytes received by the process over the network.", func() float64 { return p.in })
	r.CounterFunc("process_network_transmit_bytes_total", "Number of bytes sent by the process over the network.", func() float64 { return p.out })
	r.GaugeFunc("process_open_fds", "Number of open file descriptors.", func() float64 { return p.fds })
	r.GaugeFunc("process_resident_memory_bytes", "Resident memory size in bytes.", func() float64 { return p.rss })
	r.GaugeFunc("process_start_time_seconds", "Start time of the process since unix epoch in seconds.", func() float64 { return p.start })
	r.GaugeFunc("process_virtual_memory_bytes", "Virtual memory size in bytes.", func() float64 { return p.vsize })
	r.GaugeFunc("process_virtual_memory_max_bytes", "Maximum amount of virtual memory available in bytes.", func() float64 { return p.maxVsize })
}

// bootTime is /proc/stat's btime: the Unix time the system booted.
func bootTime() float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			return atof(strings.TrimSpace(v))
		}
	}
	return 0
}

// ipOctets is InOctets and OutOctets of the IpExt lines of /proc/self/net/netstat
// (a line of names, then a line of values).
func ipOctets() (in, out float64) {
	b, err := os.ReadFile("/proc/self/net/netstat")
	if err != nil {
		return 0, 0
	}
	var names []string
	for line := range strings.Lines(string(b)) {
		v, ok := strings.CutPrefix(line, "IpExt:")
		if !ok {
			continue
		}
		if names == nil {
			names = strings.Fields(v)
			continue
		}
		for i, x := range strings.Fields(v) {
			switch {
			case i >= len(names):
			case names[i] == "InOctets":
				in = atof(x)
			case names[i] == "OutOctets":
				out = atof(x)
			}
		}
		break
	}
	return in, out
}

func atof(s string) float64 {
	f, _ := strconv.ParseFloat(s, 64)
	return f
}
