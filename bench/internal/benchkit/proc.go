package benchkit

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clockTick is the unit of the CPU times in /proc/<pid>/stat (USER_HZ).
// Linux has exported 100 to user space on every architecture for decades;
// sysconf(_SC_CLK_TCK) would say the same without cgo.
const clockTick = 10 * time.Millisecond

// Pid is the child's process id, which is also its process group's id.
func (ch *Child) Pid() int { return ch.cmd.Process.Pid }

// GroupCPU is the CPU time, user and system, that the live processes of
// process group pgid have used so far: a server's and, for nginx, its
// master's and workers' together. Take it before and after a run; the
// difference is what the run cost the server. A process that exits in
// between takes its time with it, so measure servers, not short-lived
// helpers.
func GroupCPU(pgid int) (time.Duration, error) {
	var total time.Duration
	found := false
	err := eachInGroup(pgid, func(stat []string) error {
		// stat holds the fields after the command name: state is [0],
		// utime [11] and stime [12] (fields 14 and 15 of proc(5)).
		ut, err1 := strconv.ParseInt(stat[11], 10, 64)
		st, err2 := strconv.ParseInt(stat[12], 10, 64)
		if err1 != nil || err2 != nil {
			return fmt.Errorf("utime %q or stime %q is not a number", stat[11], stat[12])
		}
		total += time.Duration(ut+st) * clockTick
		found = true
		return nil
	})
	if err == nil && !found {
		err = fmt.Errorf("no process in group %d", pgid)
	}
	return total, err
}

// GroupRSS is the resident memory of the live processes of group pgid
// now and the sum of their peaks (VmHWM), in bytes.
func GroupRSS(pgid int) (now, peak int64, err error) {
	found := false
	err = eachPid(pgid, func(pid int) error {
		status, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
		if err != nil {
			return nil // gone since it was listed
		}
		for _, line := range strings.Split(string(status), "\n") {
			key, val, ok := strings.Cut(line, ":")
			if !ok || (key != "VmRSS" && key != "VmHWM") {
				continue
			}
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(val), " kB"), 10, 64)
			if err != nil {
				return fmt.Errorf("%s of %d: %q: %w", key, pid, val, err)
			}
			if key == "VmRSS" {
				now += kb << 10
			} else {
				peak += kb << 10
			}
			found = true
		}
		return nil
	})
	if err == nil && !found {
		err = fmt.Errorf("no process in group %d", pgid)
	}
	return now, peak, err
}

// eachInGroup calls fn with the fields of /proc/<pid>/stat after the
// command name of every process in group pgid.
func eachInGroup(pgid int, fn func(stat []string) error) error {
	return eachPid(pgid, func(pid int) error {
		fields, err := statFields(pid)
		if err != nil {
			return nil // gone since it was listed
		}
		return fn(fields)
	})
}

// eachPid calls fn with every pid of process group pgid.
func eachPid(pgid int, fn func(pid int) error) error {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return err
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		fields, err := statFields(pid)
		if err != nil || len(fields) < 13 {
			continue
		}
		// pgrp is field 5 of proc(5), [2] after the command name.
		if g, err := strconv.Atoi(fields[2]); err != nil || g != pgid {
			continue
		}
		if err := fn(pid); err != nil {
			return err
		}
	}
	return nil
}

// statFields reads /proc/<pid>/stat and returns the fields after the
// command name, which is in parentheses and may itself hold spaces.
func statFields(pid int) ([]string, error) {
	raw, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return nil, err
	}
	i := bytes.LastIndexByte(raw, ')')
	if i < 0 {
		return nil, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	return strings.Fields(string(raw[i+1:])), nil
}

// LoadAverage is the one-minute load average of the machine, which every
// benchmark prints with its figures: above about half a CPU, something else
// competes for the CPUs and the figures are noise.
func LoadAverage() (float64, error) {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0, err
	}
	fields := strings.Fields(string(raw))
	if len(fields) == 0 {
		return 0, fmt.Errorf("/proc/loadavg is empty")
	}
	return strconv.ParseFloat(fields[0], 64)
}
