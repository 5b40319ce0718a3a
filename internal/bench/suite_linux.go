package bench

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"syscall"
)

var suite = map[string]func(context.Context, Config) error{
	"connect":  benchConnect,
	"natcheck": benchNATCheck,
	"idle":     benchIdle,
	"pairing":  benchPairing,
	"burst":    benchBurst,
	"stun":     benchSTUN,
	"data":     benchData,
	"secure":   benchSecure,
}

// machine describes where the numbers come from.
func machine() string {
	model := "unknown"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	var mem string
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		mem, _, _ = strings.Cut(string(b), "\n")
		mem = strings.Join(strings.Fields(mem)[1:], " ")
	}
	return fmt.Sprintf("machine: nproc %d, CPU %q, kernel %s, %s, memory %s; somaxconn %s, tcp_max_syn_backlog %s, tcp_syncookies %s\n",
		runtime.NumCPU(), model, strings.TrimSpace(string(kernel)), runtime.Version(), mem,
		sysctl("net/core/somaxconn"), sysctl("net/ipv4/tcp_max_syn_backlog"), sysctl("net/ipv4/tcp_syncookies"))
}

func sysctl(path string) string {
	b, err := os.ReadFile("/proc/sys/" + path)
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(b))
}

// raiseNofile lifts this process's descriptor limit (and so its
// children's: an explicit Setrlimit stops Go from restoring the old soft
// limit in children) to n, or as far as allowed.
func raiseNofile(n uint64) (uint64, error) {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 0, err
	}
	if r.Cur >= n {
		return r.Cur, nil
	}
	want := syscall.Rlimit{Cur: n, Max: max(n, r.Max)}
	err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want)
	if err != nil {
		// No CAP_SYS_RESOURCE: the hard limit is the ceiling.
		want = syscall.Rlimit{Cur: r.Max, Max: r.Max}
		if err2 := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err2 != nil {
			return r.Cur, err
		}
	}
	return want.Cur, err
}
