package main

// Starting after a previous agent.
//
// The agent does not adopt processes it did not start (it could not collect
// their exit codes). On a clean stop it kills its containers and reports
// their pods Failed (provider.shutdown). On startup it handles what a crash
// left behind:
//   - killOrphans kills any process group still recorded in a pid file;
//   - failStalePods marks every pod that a previous agent had started and
//     that is not yet terminal as Failed, reason NodeAgentRestarted (a Job
//     then replaces it, within its backoffLimit); pods bound to the node but
//     never started are started normally;
//   - gcPodDirs removes state directories of pods that no longer exist.

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
)

// procStartTime returns a process's start time in clock ticks since boot
// (field 22 of /proc/PID/stat), which with the pid identifies it uniquely.
func procStartTime(pid int) (uint64, error) {
	_, start, err := procStat(pid)
	return start, err
}

// procStat returns a process's process group and start time.
func procStat(pid int) (pgid int, start uint64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// The command name may contain spaces and parentheses; fields after the
	// last ')' are fixed: state ppid pgrp ... with starttime the 20th.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("bad stat for %d", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return 0, 0, fmt.Errorf("bad stat for %d", pid)
	}
	pgid, err = strconv.Atoi(f[2])
	if err != nil {
		return 0, 0, err
	}
	start, err = strconv.ParseUint(f[19], 10, 64)
	return pgid, start, err
}

// killOrphans SIGKILLs the members of every process group recorded in a pid
// file, counting only processes started no earlier than the group leader (so
// a reused pid is never hit), and removes the pid files.
func killOrphans(stateDir string) {
	files, _ := filepath.Glob(filepath.Join(stateDir, "pods", "*", "pids", "*.pid"))
	if len(files) == 0 {
		return
	}
	type group struct{ start uint64 }
	groups := map[int]group{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		os.Remove(f)
		if err != nil {
			continue
		}
		var pid int
		var start uint64
		if _, err := fmt.Sscan(string(b), &pid, &start); err == nil && pid > 1 {
			groups[pid] = group{start}
		}
	}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		pgid, start, err := procStat(pid)
		if err != nil {
			continue
		}
		if g, ok := groups[pgid]; ok && start >= g.start {
			slog.Warn("killing process left over from a previous agent", "pid", pid, "pgid", pgid)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// failStalePods marks pods that a previous agent started as Failed.
func failStalePods(ctx context.Context, client kubernetes.Interface, nodeName, stateDir string) error {
	list, err := client.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + nodeName})
	if err != nil {
		return err
	}
	for i := range list.Items {
		pod := &list.Items[i]
		if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed || !startedBefore(pod, stateDir) {
			continue
		}
		slog.Warn("marking pod Failed: it was running under a previous agent", "pod", pod.Namespace+"/"+pod.Name)
		if err := writeStaleStatus(ctx, client, pod); err != nil {
			slog.Warn("marking pod Failed", "pod", pod.Namespace+"/"+pod.Name, "err", err)
		}
	}
	return nil
}

func startedBefore(pod *corev1.Pod, stateDir string) bool {
	dir := filepath.Join(stateDir, "pods", pod.Namespace+"_"+pod.Name+"_"+string(pod.UID))
	if _, err := os.Stat(dir); err == nil {
		return true
	}
	for _, cs := range append(append([]corev1.ContainerStatus{}, pod.Status.InitContainerStatuses...), pod.Status.ContainerStatuses...) {
		if cs.State.Running != nil || cs.State.Terminated != nil || cs.LastTerminationState.Terminated != nil {
			return true
		}
	}
	return false
}

func writeStaleStatus(ctx context.Context, client kubernetes.Interface, pod *corev1.Pod) error {
	pods := client.CoreV1().Pods(pod.Namespace)
	for attempt := 0; attempt < 10; attempt++ {
		upd := pod.DeepCopy()
		upd.Status = staleStatus(pod, metav1.Now())
		_, err := pods.UpdateStatus(ctx, upd, metav1.UpdateOptions{})
		if !apierrors.IsConflict(err) {
			if apierrors.IsNotFound(err) {
				return nil
			}
			return err
		}
		if pod, err = pods.Get(ctx, pod.Name, metav1.GetOptions{}); err != nil {
			return err
		}
	}
	return fmt.Errorf("too many conflicts")
}

// staleStatus is the Failed status of a pod whose processes were lost.
func staleStatus(pod *corev1.Pod, now metav1.Time) corev1.PodStatus {
	lost := func(specs []corev1.Container, have []corev1.ContainerStatus) []corev1.ContainerStatus {
		byName := map[string]corev1.ContainerStatus{}
		for _, cs := range have {
			byName[cs.Name] = cs
		}
		out := make([]corev1.ContainerStatus, 0, len(specs))
		for _, c := range specs {
			cs, ok := byName[c.Name]
			if !ok {
				cs = corev1.ContainerStatus{Name: c.Name, Image: c.Image}
			}
			switch {
			case cs.State.Terminated != nil:
			case cs.State.Running != nil:
				cs.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
					ExitCode: 137, Reason: reasonStatusUnknown, ContainerID: cs.ContainerID,
					Message:   "the tenx node agent restarted while the container was running",
					StartedAt: cs.State.Running.StartedAt, FinishedAt: now,
				}}
			case cs.LastTerminationState.Terminated != nil:
				cs.State, cs.LastTerminationState = cs.LastTerminationState, corev1.ContainerState{}
			default:
				cs.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
					ExitCode: 137, Reason: reasonStatusUnknown,
					Message: "The container could not be located when the pod was terminated",
				}}
			}
			cs.Ready, cs.Started = false, boolPtr(false)
			out = append(out, cs)
		}
		return out
	}
	f := podFacts{
		finished: true, initialized: true,
		reason:  reasonNodeAgentRestarted,
		message: "the tenx node agent restarted; the pod's processes were lost",
	}
	if pod.Status.StartTime != nil {
		f.startTime = *pod.Status.StartTime
	}
	return podStatusView(pod.Status, f,
		lost(pod.Spec.InitContainers, pod.Status.InitContainerStatuses),
		lost(pod.Spec.Containers, pod.Status.ContainerStatuses), now)
}

// gcPodDirs periodically removes the state of pods that are neither run by
// this agent nor present in the API server any more.
func gcPodDirs(ctx context.Context, p *Provider, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		collectPodDirs(p)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func collectPodDirs(p *Provider) {
	if p.pods == nil {
		return
	}
	// Read the directories first: a pod's directory is created only after
	// the pod is in p.runs, so every directory seen here is accounted for by
	// the sets built below.
	entries, _ := os.ReadDir(filepath.Join(p.cfg.stateDir, "pods"))
	pods, err := p.pods.List(labels.Everything())
	if err != nil {
		return
	}
	keep := map[string]bool{}
	for _, pod := range pods {
		keep[string(pod.UID)] = true
	}
	p.mu.Lock()
	for _, pr := range p.runs {
		keep[pr.uid] = true
	}
	p.mu.Unlock()
	logEntries, _ := os.ReadDir(filepath.Join(p.cfg.stateDir, podLogsDir))
	for _, group := range []struct {
		dir     string
		entries []os.DirEntry
	}{{"pods", entries}, {podLogsDir, logEntries}} {
		for _, e := range group.entries {
			i := strings.LastIndexByte(e.Name(), '_')
			if !e.IsDir() || i < 0 || keep[e.Name()[i+1:]] {
				continue
			}
			slog.Info("removing state of a pod that no longer exists", "dir", filepath.Join(group.dir, e.Name()))
			os.RemoveAll(filepath.Join(p.cfg.stateDir, group.dir, e.Name()))
		}
	}
}
