package main

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as the exec-container helper, because
// startInstance re-executes /proc/self/exe.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == execContainerCmd {
		os.Exit(execContainerMain(os.Args[2:]))
	}
	os.Exit(m.Run())
}

func startTest(t *testing.T, argv []string, binds []bindMount) (*instance, string, error) {
	t.Helper()
	dir := t.TempDir()
	req := startRequest{
		argv:    argv,
		env:     []string{"PATH=" + defaultPath, "GREETING=hi"},
		dir:     filepath.Join(dir, "work"),
		binds:   binds,
		logPath: filepath.Join(dir, "0.log"),
		pidPath: filepath.Join(dir, "0.pid"),
	}
	inst, err := startInstance(req, newLiveLogs())
	return inst, req.logPath, err
}

func TestInstanceOutputAndExitCode(t *testing.T) {
	inst, logPath, err := startTest(t, []string{"sh", "-c", "echo out; echo err >&2; printf 'cwd=%s env=%s' \"$(basename $PWD)\" \"$GREETING\"; exit 3"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	code, _ := inst.wait()
	if code != 3 {
		t.Fatalf("exit code %d, want 3", code)
	}
	got := readAll(t, logPath, logReadOptions{tail: -1}, nil)
	for _, want := range []string{"out\n", "err\n", "cwd=work env=hi"} {
		if !strings.Contains(got, want) {
			t.Errorf("log %q lacks %q", got, want)
		}
	}
	if _, err := os.Stat(inst.pidPath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pid file left behind: %v", err)
	}
}

func TestInstanceStartErrorForMissingCommand(t *testing.T) {
	_, _, err := startTest(t, []string{"definitely-not-a-command-xyz"}, nil)
	var se *startError
	if !errors.As(err, &se) || !strings.Contains(se.msg, "executable file not found") {
		t.Fatalf("got %v, want a startError about the missing executable", err)
	}
}

func TestInstanceSignalKillsProcessGroup(t *testing.T) {
	// The shell's background child is in the same group and must die too.
	inst, _, err := startTest(t, []string{"sh", "-c", "sleep 300 & echo $! > child.pid; wait"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	childPidFile := filepath.Join(filepath.Dir(inst.logPath), "work", "child.pid")
	var child int
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if b, err := os.ReadFile(childPidFile); err == nil && len(strings.TrimSpace(string(b))) > 0 {
			child = atoi(strings.TrimSpace(string(b)))
			break
		}
	}
	if child == 0 {
		t.Fatal("child did not start")
	}
	inst.signal(syscall.SIGTERM)
	code, _ := inst.wait()
	if code != 128+int(syscall.SIGTERM) {
		t.Fatalf("exit code %d, want %d", code, 128+int(syscall.SIGTERM))
	}
	// The child is gone once it is dead (possibly a zombie until its new
	// parent reaps it).
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		b, err := os.ReadFile(filepath.Join("/proc", strings.TrimSpace(itoa(child)), "stat"))
		if err != nil || strings.Contains(string(b), ") Z ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("background child %d survived: %s", child, b)
		}
	}
}

func TestInstanceBindMounts(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("bind mounts need root")
	}
	host := t.TempDir()
	rw, ro := filepath.Join(host, "rw"), filepath.Join(host, "ro")
	os.MkdirAll(rw, 0o755)
	os.MkdirAll(ro, 0o755)
	target := filepath.Join(t.TempDir(), "mnt")
	inst, logPath, err := startTest(t, []string{"sh", "-c",
		"echo data > " + target + "/rw/f && ( (echo x > " + target + "/ro/f) 2>/dev/null && echo ro-writable || echo ro-ok)"},
		[]bindMount{{Src: rw, Dst: target + "/rw"}, {Src: ro, Dst: target + "/ro", ReadOnly: true}})
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := inst.wait(); code != 0 {
		t.Fatalf("exit %d: %s", code, readAll(t, logPath, logReadOptions{tail: -1}, nil))
	}
	if b, err := os.ReadFile(filepath.Join(rw, "f")); err != nil || string(b) != "data\n" {
		t.Fatalf("file on host: %q %v", b, err)
	}
	if got := readAll(t, logPath, logReadOptions{tail: -1}, nil); got != "ro-ok\n" {
		t.Fatalf("log %q", got)
	}
	// The mounts stayed inside the container's namespace.
	if _, err := os.Stat(filepath.Join(target, "rw", "f")); err == nil {
		t.Fatal("bind mount leaked into the host namespace")
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}
