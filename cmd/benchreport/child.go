package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Result is what a child scenario reports: named numbers, plus the peak RSS
// that the parent reads from the kernel after the child exits.
type Result struct {
	Values map[string]float64 `json:"values"`
	// VmHWM is the child's own high-water RSS in bytes (/proc/self/status).
	VmHWM int64 `json:"vmhwm"`
	// MaxRSS is rusage Maxrss of the exited child, in bytes (parent side).
	MaxRSS int64 `json:"-"`
}

// scenarios run in a child process. Each returns its measurements.
var scenarios = map[string]func(ctx context.Context, arg string) (map[string]float64, error){
	"idle":      scenarioIdle,
	"stage":     scenarioStage,
	"stagebig":  scenarioStageBig,
	"plan":      scenarioPlan,
	"planfloor": scenarioPlanFloor,
}

func runChild(name, arg string) error {
	f, ok := scenarios[name]
	if !ok {
		return fmt.Errorf("unknown scenario %q", name)
	}
	// BENCHREPORT_CPUPROFILE=file profiles a scenario, to find what limits
	// a figure (go tool pprof <binary> file).
	if path := os.Getenv("BENCHREPORT_CPUPROFILE"); path != "" {
		pf, err := os.Create(path)
		if err != nil {
			return err
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if path := os.Getenv("BENCHREPORT_MEMPROFILE"); path != "" {
		runtime.MemProfileRate = 64 << 10
		defer func() {
			if pf, err := os.Create(path); err == nil {
				pprof.Lookup("allocs").WriteTo(pf, 0)
				pf.Close()
			}
		}()
	}
	vals, err := f(context.Background(), arg)
	if err != nil {
		return err
	}
	if os.Getenv("BENCHREPORT_MEMSTATS") != "" {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		fmt.Fprintf(os.Stderr, "Sys %d HeapSys %d HeapInuse %d StackSys %d NextGC %d NumGC %d TotalAlloc %d\n", ms.Sys>>20, ms.HeapSys>>20, ms.HeapInuse>>20, ms.StackSys>>20, ms.NextGC>>20, ms.NumGC, ms.TotalAlloc>>20)
		b, _ := os.ReadFile("/proc/self/status")
		os.Stderr.Write(b)
	}
	res := Result{Values: vals, VmHWM: vmHWM()}
	return json.NewEncoder(os.Stdout).Encode(res)
}

// spawn runs scenario name in a fresh process of this binary.
func spawn(ctx context.Context, name, arg string, env ...string) (Result, error) {
	exe, err := os.Executable()
	if err != nil {
		return Result{}, fmt.Errorf("find own executable: %w", err)
	}
	cmd := exec.CommandContext(ctx, exe, "-child", name, "-arg", arg)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return Result{}, fmt.Errorf("scenario %s: %w: %s", name, err, strings.TrimSpace(lastLines(errb.String(), 5)))
	}
	var res Result
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		return Result{}, fmt.Errorf("scenario %s: bad result %q: %w", name, out.String(), err)
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		res.MaxRSS = ru.Maxrss << 10 // KiB on Linux
	}
	return res, nil
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// vmHWM is this process's peak resident set (bytes), 0 if unknown.
func vmHWM() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// cpuTime is the CPU time (user + system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// measure runs f and returns its wall and CPU time.
func measure(f func() error) (wall, cpu time.Duration, err error) {
	c0, t0 := cpuTime(), time.Now()
	err = f()
	return time.Since(t0), cpuTime() - c0, err
}

func scenarioIdle(context.Context, string) (map[string]float64, error) {
	return map[string]float64{}, nil
}

const mib = 1 << 20

func mibs(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/mib) }
