package main

// Pod status computation, kept free of side effects so it can be unit-tested.
//
// The supervisor (podrun.go) maintains each container's ContainerStatus and
// a few pod-level facts; podStatusView turns them into the PodStatus that is
// written to the API server, on top of the status the API server already has
// (so fields we do not own, such as qosClass or conditions added by
// controllers, survive).

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const (
	nodeIP = "127.0.0.1"

	reasonEntrypointUnsupported = "EntrypointUnsupported"
	msgEntrypointUnsupported    = "this local agent runs commands as host processes and cannot run an image's default entrypoint"
	reasonCrashLoopBackOff      = "CrashLoopBackOff"
	reasonStartError            = "StartError"
	reasonContainerCreating     = "ContainerCreating"
	reasonPodInitializing       = "PodInitializing"
	reasonStatusUnknown         = "ContainerStatusUnknown"
	reasonNodeAgentRestarted    = "NodeAgentRestarted"
	reasonNodeAgentStopped      = "NodeAgentStopped"

	containerIDScheme = "tenx://"
)

// podFacts are the supervisor's pod-level facts.
type podFacts struct {
	startTime   metav1.Time
	initialized bool   // all init containers succeeded
	finished    bool   // nothing runs and nothing will be restarted
	reason      string // pod-level failure reason, e.g. EntrypointUnsupported
	message     string
	initNames   []string
	mainNames   []string
}

// containerID names one container instance; the instance number selects its
// log file, so logs can be found from the pod status alone (also after an
// agent restart).
func containerID(uid, container string, instance int32) string {
	return fmt.Sprintf("%s%s/%s/%d", containerIDScheme, uid, container, instance)
}

// instanceFromID parses containerID's output; ok is false for other IDs.
func instanceFromID(id string) (int32, bool) {
	if !strings.HasPrefix(id, containerIDScheme) {
		return 0, false
	}
	i := strings.LastIndexByte(id, '/')
	n, err := strconv.ParseInt(id[i+1:], 10, 32)
	if err != nil || n < 0 {
		return 0, false
	}
	return int32(n), true
}

// podPhase follows kubelet's rules for the states this agent produces.
func podPhase(f podFacts, main []corev1.ContainerStatus) corev1.PodPhase {
	if f.reason != "" && f.finished {
		return corev1.PodFailed
	}
	if f.finished {
		for _, cs := range main {
			if cs.State.Terminated == nil || cs.State.Terminated.ExitCode != 0 {
				return corev1.PodFailed
			}
		}
		return corev1.PodSucceeded
	}
	if !f.initialized {
		return corev1.PodPending
	}
	for _, cs := range main {
		// A container that has never started keeps the pod Pending; one
		// waiting for a restart (CrashLoopBackOff) does not.
		if cs.State.Waiting != nil && cs.LastTerminationState.Terminated == nil {
			return corev1.PodPending
		}
	}
	return corev1.PodRunning
}

// podStatusView overlays what the agent knows onto base (the API server's
// current status) and returns the result. now stamps condition transitions.
func podStatusView(base corev1.PodStatus, f podFacts, initStatuses, mainStatuses []corev1.ContainerStatus, now metav1.Time) corev1.PodStatus {
	st := *base.DeepCopy()
	st.Phase = podPhase(f, mainStatuses)
	st.Reason, st.Message = f.reason, f.message
	st.HostIP = nodeIP
	st.HostIPs = []corev1.HostIP{{IP: nodeIP}}
	st.PodIP = nodeIP
	st.PodIPs = []corev1.PodIP{{IP: nodeIP}}
	if !f.startTime.IsZero() {
		st.StartTime = f.startTime.DeepCopy()
	}
	st.InitContainerStatuses = cloneStatuses(initStatuses)
	st.ContainerStatuses = cloneStatuses(mainStatuses)

	terminal := st.Phase == corev1.PodSucceeded || st.Phase == corev1.PodFailed
	var notInit, notReady []string
	for _, cs := range initStatuses {
		if cs.State.Terminated == nil || cs.State.Terminated.ExitCode != 0 {
			notInit = append(notInit, cs.Name)
		}
	}
	for _, cs := range mainStatuses {
		if !cs.Ready {
			notReady = append(notReady, cs.Name)
		}
	}

	set := func(t corev1.PodConditionType, ok bool, reason, msg string) {
		setCondition(&st.Conditions, t, ok, reason, msg, now)
	}
	set(corev1.PodReadyToStartContainers, !terminal, "", "")
	if f.initialized || len(initStatuses) == 0 {
		set(corev1.PodInitialized, true, "", "")
	} else {
		set(corev1.PodInitialized, false, "ContainersNotInitialized",
			fmt.Sprintf("containers with incomplete status: [%s]", strings.Join(notInit, " ")))
	}
	switch {
	case terminal:
		set(corev1.ContainersReady, false, "PodCompleted", "")
		set(corev1.PodReady, false, "PodCompleted", "")
	case len(notReady) > 0:
		msg := fmt.Sprintf("containers with unready status: [%s]", strings.Join(notReady, " "))
		set(corev1.ContainersReady, false, "ContainersNotReady", msg)
		set(corev1.PodReady, false, "ContainersNotReady", msg)
	default:
		set(corev1.ContainersReady, true, "", "")
		set(corev1.PodReady, true, "", "")
	}
	sortConditions(st.Conditions)
	return st
}

// setCondition updates or adds a condition, keeping its transition time when
// the status did not change.
func setCondition(conds *[]corev1.PodCondition, t corev1.PodConditionType, ok bool, reason, msg string, now metav1.Time) {
	status := corev1.ConditionFalse
	if ok {
		status = corev1.ConditionTrue
	}
	for i := range *conds {
		c := &(*conds)[i]
		if c.Type != t {
			continue
		}
		if c.Status != status {
			c.LastTransitionTime = now
		}
		c.Status, c.Reason, c.Message = status, reason, msg
		c.LastProbeTime = metav1.Time{}
		return
	}
	*conds = append(*conds, corev1.PodCondition{Type: t, Status: status, Reason: reason, Message: msg, LastTransitionTime: now})
}

// sortConditions puts the kubelet-owned conditions in kubelet's order, after
// any others.
func sortConditions(conds []corev1.PodCondition) {
	rank := map[corev1.PodConditionType]int{
		corev1.PodReadyToStartContainers: 1,
		corev1.PodInitialized:            2,
		corev1.PodReady:                  3,
		corev1.ContainersReady:           4,
		corev1.PodScheduled:              5,
	}
	sort.SliceStable(conds, func(i, j int) bool { return rank[conds[i].Type] < rank[conds[j].Type] })
}

func cloneStatuses(in []corev1.ContainerStatus) []corev1.ContainerStatus {
	if in == nil {
		return nil
	}
	out := make([]corev1.ContainerStatus, len(in))
	for i := range in {
		in[i].DeepCopyInto(&out[i])
	}
	return out
}

// logInstance picks the container instance whose log to serve, with
// kubelet's rules: the current instance (running or terminated, or the last
// terminated one while waiting to restart), or with previous the one in
// lastState.
func logInstance(cs *corev1.ContainerStatus, previous bool, podName string) (int32, error) {
	last := cs.LastTerminationState.Terminated
	if previous {
		if last == nil {
			return 0, fmt.Errorf("previous terminated container %q in pod %q not found", cs.Name, podName)
		}
		return idFromStatus(last.ContainerID, cs.Name, podName)
	}
	switch {
	case cs.State.Running != nil:
		return idFromStatus(cs.ContainerID, cs.Name, podName)
	case cs.State.Terminated != nil:
		id := cs.State.Terminated.ContainerID
		if id == "" {
			id = cs.ContainerID
		}
		if id == "" && last != nil {
			id = last.ContainerID
		}
		return idFromStatus(id, cs.Name, podName)
	case last != nil:
		return idFromStatus(last.ContainerID, cs.Name, podName)
	case cs.State.Waiting != nil:
		return 0, fmt.Errorf("container %q in pod %q is waiting to start: %s", cs.Name, podName, cs.State.Waiting.Reason)
	}
	return 0, fmt.Errorf("container %q in pod %q is waiting to start - no logs yet", cs.Name, podName)
}

func idFromStatus(id, container, podName string) (int32, error) {
	n, ok := instanceFromID(id)
	if !ok {
		return 0, fmt.Errorf("container %q in pod %q has no logs on this node", container, podName)
	}
	return n, nil
}
