package main

// The per-pod supervisor: runs init containers one after another, then all
// containers side by side, restarting them according to restartPolicy with
// crash-loop backoff, and stops everything when the pod is deleted.

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// minKillGrace is kubelet's minimum grace period between SIGTERM and SIGKILL.
const minKillGrace = 2 * time.Second

type containerRun struct {
	spec   corev1.Container
	init   bool
	status corev1.ContainerStatus
	proc   *instance // the running instance, if any
}

type podRun struct {
	p      *Provider
	key    string
	uid    string
	dir    string // working directory, emptyDirs, pid files
	logDir string // container logs, as kubelet lays them out

	mu         sync.Mutex // guards everything below
	pod        *corev1.Pod
	facts      podFacts
	inits      []*containerRun
	mains      []*containerRun
	deleting   bool
	killTimer  *time.Timer
	dirty      bool // a status change not yet written
	publishing bool

	writeMu  sync.Mutex    // serialises status writes
	deleteCh chan struct{} // closed when deletion starts
	doneCh   chan struct{} // closed when no process runs or will run
}

func newPodRun(p *Provider, pod *corev1.Pod) *podRun {
	pr := &podRun{
		p:        p,
		key:      pod.Namespace + "/" + pod.Name,
		uid:      string(pod.UID),
		dir:      p.podDir(pod),
		logDir:   p.podLogDir(pod),
		pod:      pod.DeepCopy(),
		deleteCh: make(chan struct{}),
		doneCh:   make(chan struct{}),
	}
	pr.facts.startTime = metav1.Now()
	waiting := func(c corev1.Container, init bool, reason string) *containerRun {
		return &containerRun{spec: c, init: init, status: corev1.ContainerStatus{
			Name:  c.Name,
			Image: c.Image,
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason}},
		}}
	}
	for _, c := range pod.Spec.InitContainers {
		pr.inits = append(pr.inits, waiting(c, true, reasonPodInitializing))
		pr.facts.initNames = append(pr.facts.initNames, c.Name)
	}
	mainReason := reasonContainerCreating
	if len(pr.inits) > 0 {
		mainReason = reasonPodInitializing
	}
	for _, c := range pod.Spec.Containers {
		pr.mains = append(pr.mains, waiting(c, false, mainReason))
		pr.facts.mainNames = append(pr.facts.mainNames, c.Name)
	}
	pr.facts.initialized = len(pr.inits) == 0
	return pr
}

// run supervises the pod until it is finished or deleted.
func (pr *podRun) run() {
	defer close(pr.doneCh)
	defer func() {
		pr.mu.Lock()
		pr.facts.finished = true
		pr.closeNeverStarted()
		pr.mu.Unlock()
		pr.publish()
	}()
	pr.publish()

	if reason, msg := pr.checkRunnable(); reason != "" {
		pr.mu.Lock()
		pr.facts.reason, pr.facts.message = reason, msg
		pr.mu.Unlock()
		slog.Warn("pod cannot run", "pod", pr.key, "reason", reason, "message", msg)
		return
	}
	for _, cr := range pr.inits {
		if !pr.runContainer(cr) {
			return
		}
	}
	pr.mu.Lock()
	pr.facts.initialized = true
	for _, cr := range pr.mains {
		cr.status.State.Waiting.Reason = reasonContainerCreating
	}
	pr.mu.Unlock()
	if len(pr.inits) > 0 {
		pr.publish()
	}

	var wg sync.WaitGroup
	for _, cr := range pr.mains {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pr.runContainer(cr)
		}()
	}
	wg.Wait()
}

// checkRunnable rejects pods this agent cannot run at all, and prepares the
// pod's directories and volumes.
func (pr *podRun) checkRunnable() (reason, msg string) {
	for _, cr := range append(append([]*containerRun{}, pr.inits...), pr.mains...) {
		if len(cr.spec.Command) == 0 {
			pr.mu.Lock()
			cr.status.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
				ExitCode: 128, Reason: reasonEntrypointUnsupported, Message: msgEntrypointUnsupported,
			}}
			pr.mu.Unlock()
			return reasonEntrypointUnsupported, fmt.Sprintf("container %q has no command: %s", cr.spec.Name, msgEntrypointUnsupported)
		}
	}
	for _, sub := range []string{"work", "pids"} {
		if err := os.MkdirAll(filepath.Join(pr.dir, sub), 0o755); err != nil {
			return "PodSetupFailed", err.Error()
		}
	}
	if err := prepareVolumes(pr.pod, pr.dir); err != nil {
		return "VolumeSetupFailed", err.Error()
	}
	return "", ""
}

// closeNeverStarted gives containers that never ran a terminated state once
// the pod is finished, as kubelet does, so that every container of a
// terminal pod is terminal.
func (pr *podRun) closeNeverStarted() {
	for _, cr := range append(append([]*containerRun{}, pr.inits...), pr.mains...) {
		if cr.status.State.Waiting == nil {
			continue
		}
		if last := cr.status.LastTerminationState.Terminated; last != nil {
			// Stopped while waiting for a restart: report the last exit.
			cr.status.State = corev1.ContainerState{Terminated: last}
			cr.status.LastTerminationState = corev1.ContainerState{}
			continue
		}
		cr.status.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: 137, Reason: reasonStatusUnknown,
			Message: "The container could not be located when the pod was terminated",
		}}
	}
}

// runContainer runs one container until it needs no more restarts, and
// reports whether its last run succeeded.
func (pr *podRun) runContainer(cr *containerRun) bool {
	bo := newCrashBackoff(pr.p.cfg.crashBase, pr.p.cfg.crashMax)
	for {
		term, ok := pr.runInstance(cr)
		if !ok {
			return false // deleted before it could start
		}
		if pr.isDeleting() || !shouldRestart(pr.pod.Spec.RestartPolicy, cr.init, term.ExitCode) {
			return term.ExitCode == 0
		}
		d := bo.delay(term.FinishedAt.Sub(term.StartedAt.Time))
		pr.mu.Lock()
		cr.status.LastTerminationState = cr.status.State
		cr.status.State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{
			Reason: reasonCrashLoopBackOff,
			Message: fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)",
				d, cr.spec.Name, pr.pod.Name, pr.pod.Namespace, pr.uid),
		}}
		pr.mu.Unlock()
		pr.publish()

		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-pr.deleteCh:
			t.Stop()
			return false
		}
		pr.mu.Lock()
		cr.status.RestartCount++
		pr.mu.Unlock()
	}
}

func shouldRestart(policy corev1.RestartPolicy, init bool, exitCode int32) bool {
	switch {
	case policy == corev1.RestartPolicyNever:
		return false
	case init || policy == corev1.RestartPolicyOnFailure:
		return exitCode != 0
	default: // Always
		return true
	}
}

// runInstance starts the container once and waits for it. ok is false when
// the pod was deleted before the process could start.
func (pr *podRun) runInstance(cr *containerRun) (term corev1.ContainerStateTerminated, ok bool) {
	pr.mu.Lock()
	if pr.deleting {
		pr.mu.Unlock()
		return term, false
	}
	idx := cr.status.RestartCount
	id := containerID(pr.uid, cr.spec.Name, idx)
	req, err := pr.startRequest(cr, idx)
	var inst *instance
	if err == nil {
		// Started under the lock so that deletion, which signals every
		// running instance under the same lock, cannot miss this one.
		inst, err = startInstance(req, pr.p.lives)
	}
	if err != nil {
		now := metav1.Now()
		term = corev1.ContainerStateTerminated{
			ExitCode: 128, Reason: reasonStartError, Message: err.Error(),
			StartedAt: now, FinishedAt: now, ContainerID: id,
		}
		var se *startError
		if !errors.As(err, &se) {
			slog.Error("container setup failed", "pod", pr.key, "container", cr.spec.Name, "err", err)
		}
		cr.status.ContainerID = id
		cr.status.State = corev1.ContainerState{Terminated: term.DeepCopy()}
		cr.status.Ready, cr.status.Started = false, boolPtr(false)
		pr.mu.Unlock()
		pr.publish()
		return term, true
	}
	cr.proc = inst
	started := metav1.NewTime(inst.started)
	cr.status.ContainerID = id
	cr.status.State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: started}}
	cr.status.Ready = !cr.init
	cr.status.Started = boolPtr(true)
	pr.mu.Unlock()
	pr.publish()
	slog.Info("container started", "pod", pr.key, "container", cr.spec.Name, "pid", inst.pid, "restartCount", idx)

	code, finished := inst.wait()
	reason := "Completed"
	if code != 0 {
		reason = "Error"
	}
	term = corev1.ContainerStateTerminated{
		ExitCode: int32(code), Reason: reason, StartedAt: started,
		FinishedAt: metav1.NewTime(finished), ContainerID: id,
	}
	if code > 128 && code < 128+65 {
		term.Signal = int32(code - 128)
	}
	pr.mu.Lock()
	cr.proc = nil
	cr.status.State = corev1.ContainerState{Terminated: term.DeepCopy()}
	cr.status.Ready, cr.status.Started = false, boolPtr(false)
	pr.mu.Unlock()
	pr.publish()
	slog.Info("container exited", "pod", pr.key, "container", cr.spec.Name, "exitCode", code)
	return term, true
}

// startRequest assembles what startInstance needs; it is called with pr.mu.
func (pr *podRun) startRequest(cr *containerRun, idx int32) (startRequest, error) {
	own, err := resolveContainerEnv(pr.pod, &cr.spec, pr.p.envSources())
	if err != nil {
		return startRequest{}, &startError{msg: "CreateContainerConfigError: " + err.Error()}
	}
	binds, err := containerBinds(pr.pod, &cr.spec, pr.dir)
	if err != nil {
		return startRequest{}, &startError{msg: err.Error()}
	}
	dir := cr.spec.WorkingDir
	if dir == "" {
		dir = filepath.Join(pr.dir, "work")
	}
	logDir := filepath.Join(pr.logDir, cr.spec.Name)
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return startRequest{}, err
	}
	return startRequest{
		argv:    expandCommand(&cr.spec, own),
		env:     processEnv(pr.pod, own),
		dir:     dir,
		binds:   binds,
		logPath: logPath(pr.logDir, cr.spec.Name, idx),
		pidPath: filepath.Join(pr.dir, "pids", cr.spec.Name+".pid"),
	}, nil
}

func logPath(podLogDir, container string, instance int32) string {
	return filepath.Join(podLogDir, container, fmt.Sprintf("%d.log", instance))
}

func (pr *podRun) isDeleting() bool {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	return pr.deleting
}

// stop begins deletion: SIGTERM to every running process group now, SIGKILL
// after the grace period. Further calls only shorten the grace period.
func (pr *podRun) stop(grace time.Duration) {
	if grace < minKillGrace {
		grace = minKillGrace
	}
	pr.mu.Lock()
	defer pr.mu.Unlock()
	if pr.deleting {
		return
	}
	pr.deleting = true
	close(pr.deleteCh)
	for _, cr := range append(append([]*containerRun{}, pr.inits...), pr.mains...) {
		if cr.proc != nil {
			cr.proc.signal(syscall.SIGTERM)
		}
	}
	pr.killTimer = time.AfterFunc(grace, func() { pr.killAll(syscall.SIGKILL) })
}

func (pr *podRun) killAll(sig syscall.Signal) {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	for _, cr := range append(append([]*containerRun{}, pr.inits...), pr.mains...) {
		if cr.proc != nil {
			cr.proc.signal(sig)
		}
	}
}

// view returns the pod with the agent's status overlaid on base.
func (pr *podRun) view(base corev1.PodStatus) *corev1.Pod {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	pod := pr.pod.DeepCopy()
	var inits, mains []corev1.ContainerStatus
	for _, cr := range pr.inits {
		inits = append(inits, cr.status)
	}
	for _, cr := range pr.mains {
		mains = append(mains, cr.status)
	}
	pod.Status = podStatusView(base, pr.facts, inits, mains, metav1.Now())
	return pod
}

func boolPtr(b bool) *bool { return &b }
