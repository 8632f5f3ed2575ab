package main

// Container processes.
//
// A container instance is the exec-container helper (see mountns.go) exec'ing
// the container's command. It runs in its own process group so the agent can
// signal everything the command started; when the main process exits, the
// rest of the group is killed, as a container runtime tears down a container
// when its init process dies. Pdeathsig makes the kernel kill the main process
// if the agent itself dies; a pid file lets the next agent clean up anything
// that survived (see recovery.go).

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// startRequest describes one container instance to start.
type startRequest struct {
	argv    []string
	env     []string
	dir     string
	binds   []bindMount
	logPath string
	pidPath string
}

// instance is a started container process.
type instance struct {
	cmd      *exec.Cmd
	pid      int
	started  time.Time
	log      *liveLog
	lives    *liveLogs
	logPath  string
	pidPath  string
	pipes    []*os.File // read ends of stdout and stderr
	copyDone sync.WaitGroup
	waitOnce sync.Once
	exitCode int
	finished time.Time
}

// startError is a failure to start the command (exec failed, mounts failed);
// runtimes report it as reason StartError with exit code 128.
type startError struct{ msg string }

func (e *startError) Error() string { return e.msg }

// startInstance forks the helper. It returns once the command has been
// exec'd, or with a *startError when it could not be.
func startInstance(req startRequest, lives *liveLogs) (*instance, error) {
	args, err := helperArgs(execSpec{Binds: req.binds, Dir: req.dir}, req.argv)
	if err != nil {
		return nil, err
	}
	logFile, err := os.OpenFile(req.logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("creating log file: %w", err)
	}
	var files []*os.File // everything to close on failure
	closeAll := func() {
		for _, f := range files {
			f.Close()
		}
	}
	pipe := func() (*os.File, *os.File) {
		if err != nil {
			return nil, nil
		}
		var r, w *os.File
		r, w, err = os.Pipe()
		files = append(files, r, w)
		return r, w
	}
	outR, outW := pipe()
	errR, errW := pipe()
	statusR, statusW := pipe()
	if err != nil {
		closeAll()
		logFile.Close()
		return nil, err
	}

	attr := &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if len(req.binds) > 0 {
		attr.Cloneflags = syscall.CLONE_NEWNS
	}
	cmd := &exec.Cmd{
		Path:        "/proc/self/exe", // this very binary, even if replaced on disk since
		Args:        args,
		Env:         req.env,
		Stdout:      outW,
		Stderr:      errW,
		ExtraFiles:  []*os.File{statusW},
		SysProcAttr: attr,
	}
	if err := cmd.Start(); err != nil {
		closeAll()
		logFile.Close()
		return nil, &startError{msg: fmt.Sprintf("starting process: %v", err)}
	}
	// The child has its copies; ours must go so EOFs arrive.
	outW.Close()
	errW.Close()
	statusW.Close()

	inst := &instance{
		cmd:     cmd,
		pid:     cmd.Process.Pid,
		log:     newLiveLog(logFile),
		lives:   lives,
		logPath: req.logPath,
		pidPath: req.pidPath,
		pipes:   []*os.File{outR, errR},
	}
	lives.add(req.logPath, inst.log)
	writePidFile(req.pidPath, inst.pid)

	// Read the status pipe: EOF without data means the exec happened.
	msg, _ := io.ReadAll(statusR)
	statusR.Close()
	inst.started = time.Now()
	for i, r := range inst.pipes {
		stream := [...]string{"stdout", "stderr"}[i]
		inst.copyDone.Add(1)
		go func() {
			defer inst.copyDone.Done()
			inst.log.copyStream(r, stream)
		}()
	}
	if len(msg) > 0 {
		inst.wait()
		return nil, &startError{msg: string(msg)}
	}
	return inst, nil
}

// signal sends sig to the instance's whole process group.
func (in *instance) signal(sig syscall.Signal) {
	_ = syscall.Kill(-in.pid, sig)
}

// wait blocks until the main process exits, then kills what is left of its
// process group, collects the output and returns the exit code (128+signal
// for a killed process, as runtimes report it). It may be called repeatedly.
func (in *instance) wait() (int, time.Time) {
	in.waitOnce.Do(func() {
		// Wait without reaping: while the exited leader is a zombie its pid
		// cannot be reused, so signalling its group is safe.
		var info unix.Siginfo
		for {
			err := unix.Waitid(unix.P_PID, in.pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
			if !errors.Is(err, unix.EINTR) {
				break
			}
		}
		in.finished = time.Now()
		in.signal(syscall.SIGKILL)
		_ = in.cmd.Wait()
		in.exitCode = exitCodeOf(in.cmd.ProcessState)

		// Output still in the pipes is copied; a process that escaped the
		// group (setsid) could hold them open forever, so give up after a bit.
		copied := make(chan struct{})
		go func() { in.copyDone.Wait(); close(copied) }()
		select {
		case <-copied:
		case <-time.After(2 * time.Second):
			for _, p := range in.pipes {
				p.Close()
			}
			<-copied
		}
		for _, p := range in.pipes {
			p.Close()
		}
		in.log.finish()
		// Readers that start from now on read a finished file; those
		// following it already hold the liveLog.
		in.lives.remove(in.logPath)
		os.Remove(in.pidPath)
	})
	return in.exitCode, in.finished
}

func exitCodeOf(ps *os.ProcessState) int {
	if ps == nil {
		return 128
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

// writePidFile records "<pid> <start time>" so a later agent can recognise
// the process group after a crash without mistaking a reused pid for it.
func writePidFile(path string, pid int) {
	st, err := procStartTime(pid)
	if err != nil {
		return
	}
	_ = os.WriteFile(path, []byte(strconv.Itoa(pid)+" "+strconv.FormatUint(st, 10)+"\n"), 0o644)
}
