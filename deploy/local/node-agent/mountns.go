package main

// The exec-container helper.
//
// Go cannot run code between fork and exec, so the agent starts each
// container as `tenx-node-agent exec-container <spec-json> -- cmd args...`,
// in a new mount namespace (when the container has volume mounts) and its own
// process group. The helper makes every mount private to its namespace, bind-
// mounts the pod's volumes at their mount paths, changes to the working
// directory and then execs the command, which keeps the helper's pid.
//
// fd 3 is a close-on-exec status pipe back to the agent: a successful exec
// closes it with nothing written; any failure is written there and the helper
// exits 128, which the agent reports as a StartError (as a container runtime
// does when it cannot start a process).

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
)

const execContainerCmd = "exec-container"

// execSpec is what the agent tells the helper, as JSON in argv[2].
type execSpec struct {
	Binds []bindMount `json:"binds,omitempty"`
	Dir   string      `json:"dir"`
}

// bindMount mounts Src (a host path) at Dst inside the container's namespace.
type bindMount struct {
	Src      string `json:"src"`
	Dst      string `json:"dst"`
	ReadOnly bool   `json:"ro,omitempty"`
}

// helperArgs builds the helper's argv (without the program path).
func helperArgs(spec execSpec, argv []string) ([]string, error) {
	b, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	return append([]string{"tenx-node-agent", execContainerCmd, string(b), "--"}, argv...), nil
}

// execContainerMain runs in the helper process; it only returns on failure.
func execContainerMain(args []string) int {
	status := os.NewFile(3, "status")
	if status != nil {
		syscall.CloseOnExec(3)
	}
	fail := func(format string, a ...any) int {
		msg := fmt.Sprintf(format, a...)
		if status != nil {
			status.WriteString(msg)
		} else {
			fmt.Fprintln(os.Stderr, msg)
		}
		return 128
	}
	if len(args) < 3 || args[1] != "--" {
		return fail("usage: tenx-node-agent exec-container SPEC_JSON -- COMMAND [ARGS...]")
	}
	var spec execSpec
	if err := json.Unmarshal([]byte(args[0]), &spec); err != nil {
		return fail("bad exec spec: %v", err)
	}
	argv := args[2:]
	if len(spec.Binds) > 0 {
		if err := setupMounts(spec.Binds); err != nil {
			return fail("%v", err)
		}
	}
	if spec.Dir != "" {
		// Container runtimes create a missing working directory too.
		if err := os.MkdirAll(spec.Dir, 0o755); err != nil {
			return fail("creating working directory: %v", err)
		}
		if err := os.Chdir(spec.Dir); err != nil {
			return fail("changing to working directory: %v", err)
		}
	}
	// Our environment is already the container's, so PATH lookup uses the
	// container's PATH, like a runtime resolving the command.
	path, err := exec.LookPath(argv[0])
	if err != nil && !errors.Is(err, exec.ErrDot) {
		return fail("exec: %q: executable file not found in $PATH", argv[0])
	}
	err = syscall.Exec(path, argv, os.Environ())
	return fail("exec %q: %v", argv[0], err)
}

// setupMounts runs inside the new mount namespace.
func setupMounts(binds []bindMount) error {
	// Without this, mounts would propagate back to the host's namespace
	// through shared mount points.
	if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making / private in the container's mount namespace: %w", err)
	}
	for _, b := range binds {
		if err := ensureMountTarget(b.Src, b.Dst); err != nil {
			return fmt.Errorf("creating mount point %s: %w", b.Dst, err)
		}
		if err := syscall.Mount(b.Src, b.Dst, "", syscall.MS_BIND|syscall.MS_REC, ""); err != nil {
			return fmt.Errorf("bind-mounting %s at %s: %w", b.Src, b.Dst, err)
		}
		if b.ReadOnly {
			// A bind mount's flags can only be changed by a remount.
			flags := uintptr(syscall.MS_BIND | syscall.MS_REMOUNT | syscall.MS_RDONLY)
			if err := syscall.Mount("", b.Dst, "", flags, ""); err != nil {
				return fmt.Errorf("making %s read-only: %w", b.Dst, err)
			}
		}
	}
	return nil
}

// ensureMountTarget creates dst to match src's kind: a directory for a
// directory, an empty file for anything else (a file, a socket, a device).
// The mount point is created in the shared host filesystem, as Docker does
// for bind mounts.
func ensureMountTarget(src, dst string) error {
	st, err := os.Stat(src)
	if err != nil {
		return err
	}
	if _, err := os.Lstat(dst); err == nil {
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if st.IsDir() {
		return os.MkdirAll(dst, 0o755)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	return f.Close()
}
