package main

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func running(name string) corev1.ContainerStatus {
	return corev1.ContainerStatus{Name: name, Ready: true,
		State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}
}

func exited(name string, code int32) corev1.ContainerStatus {
	return corev1.ContainerStatus{Name: name,
		State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code}}}
}

func waitingNew(name string) corev1.ContainerStatus {
	return corev1.ContainerStatus{Name: name,
		State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reasonContainerCreating}}}
}

func crashLooping(name string) corev1.ContainerStatus {
	cs := exited(name, 3)
	cs.LastTerminationState = cs.State
	cs.State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reasonCrashLoopBackOff}}
	return cs
}

func TestPodPhase(t *testing.T) {
	init := podFacts{initialized: true}
	fin := podFacts{initialized: true, finished: true}
	cases := []struct {
		name  string
		facts podFacts
		cs    []corev1.ContainerStatus
		want  corev1.PodPhase
	}{
		{"not initialized", podFacts{}, []corev1.ContainerStatus{waitingNew("a")}, corev1.PodPending},
		{"creating", init, []corev1.ContainerStatus{waitingNew("a")}, corev1.PodPending},
		{"one running one creating", init, []corev1.ContainerStatus{running("a"), waitingNew("b")}, corev1.PodPending},
		{"running", init, []corev1.ContainerStatus{running("a")}, corev1.PodRunning},
		{"crash loop", init, []corev1.ContainerStatus{crashLooping("a")}, corev1.PodRunning},
		{"exited, restart pending", init, []corev1.ContainerStatus{exited("a", 1)}, corev1.PodRunning},
		{"succeeded", fin, []corev1.ContainerStatus{exited("a", 0), exited("b", 0)}, corev1.PodSucceeded},
		{"failed", fin, []corev1.ContainerStatus{exited("a", 0), exited("b", 2)}, corev1.PodFailed},
		{"pod-level failure", podFacts{finished: true, reason: "X"}, []corev1.ContainerStatus{exited("a", 0)}, corev1.PodFailed},
	}
	for _, c := range cases {
		if got := podPhase(c.facts, c.cs); got != c.want {
			t.Errorf("%s: got %s, want %s", c.name, got, c.want)
		}
	}
}

func condition(st corev1.PodStatus, typ corev1.PodConditionType) *corev1.PodCondition {
	for i := range st.Conditions {
		if st.Conditions[i].Type == typ {
			return &st.Conditions[i]
		}
	}
	return nil
}

func TestPodStatusViewKeepsForeignFieldsAndTransitionTimes(t *testing.T) {
	t1 := metav1.NewTime(t0)
	t2 := metav1.NewTime(t0.Add(10e9))
	base := corev1.PodStatus{
		QOSClass: corev1.PodQOSBestEffort,
		Conditions: []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: t1},
			{Type: "DisruptionTarget", Status: corev1.ConditionTrue, LastTransitionTime: t1},
			{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: t1},
		},
	}
	st := podStatusView(base, podFacts{initialized: true}, nil, []corev1.ContainerStatus{running("a")}, t2)
	if st.Phase != corev1.PodRunning || st.QOSClass != corev1.PodQOSBestEffort || st.PodIP != nodeIP || st.HostIP != nodeIP {
		t.Fatalf("unexpected status %+v", st)
	}
	if c := condition(st, "DisruptionTarget"); c == nil {
		t.Fatal("foreign condition dropped")
	}
	if c := condition(st, corev1.PodReady); c.Status != corev1.ConditionTrue || !c.LastTransitionTime.Equal(&t1) {
		t.Fatalf("Ready condition %+v should keep its transition time", c)
	}
	if c := condition(st, corev1.ContainersReady); c == nil || c.Status != corev1.ConditionTrue || !c.LastTransitionTime.Equal(&t2) {
		t.Fatalf("ContainersReady %+v", c)
	}

	done := podStatusView(st, podFacts{initialized: true, finished: true}, nil, []corev1.ContainerStatus{exited("a", 0)}, t2)
	if done.Phase != corev1.PodSucceeded {
		t.Fatalf("phase %s", done.Phase)
	}
	if c := condition(done, corev1.PodReady); c.Status != corev1.ConditionFalse || c.Reason != "PodCompleted" {
		t.Fatalf("Ready after completion: %+v", c)
	}
}

func TestInitializedCondition(t *testing.T) {
	st := podStatusView(corev1.PodStatus{}, podFacts{}, []corev1.ContainerStatus{running("setup")},
		[]corev1.ContainerStatus{waitingNew("a")}, metav1.Now())
	c := condition(st, corev1.PodInitialized)
	if c.Status != corev1.ConditionFalse || c.Message != "containers with incomplete status: [setup]" {
		t.Fatalf("Initialized %+v", c)
	}
}

func TestContainerIDRoundTrip(t *testing.T) {
	id := containerID("1234-abcd", "main", 7)
	if n, ok := instanceFromID(id); !ok || n != 7 {
		t.Fatalf("instanceFromID(%q) = %d, %v", id, n, ok)
	}
	for _, bad := range []string{"", "containerd://abc", "tenx://x/y/z", "tenx://x/y/-1"} {
		if _, ok := instanceFromID(bad); ok {
			t.Errorf("instanceFromID(%q) succeeded", bad)
		}
	}
}

func TestLogInstanceFollowsKubeletRules(t *testing.T) {
	id := func(n int32) string { return containerID("u", "c", n) }
	run := corev1.ContainerStatus{Name: "c", ContainerID: id(2), RestartCount: 2,
		State:                corev1.ContainerState{Running: &corev1.ContainerStateRunning{}},
		LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ContainerID: id(1)}}}
	backoff := corev1.ContainerStatus{Name: "c", ContainerID: id(1), RestartCount: 1,
		State:                corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reasonCrashLoopBackOff}},
		LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ContainerID: id(1)}}}
	done := corev1.ContainerStatus{Name: "c", ContainerID: id(0),
		State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ContainerID: id(0)}}}
	creating := waitingNew("c")

	check := func(name string, cs corev1.ContainerStatus, previous bool, want int32, wantErr bool) {
		t.Helper()
		got, err := logInstance(&cs, previous, "p")
		if (err != nil) != wantErr || (!wantErr && got != want) {
			t.Errorf("%s: got %d, %v; want %d, err=%v", name, got, err, want, wantErr)
		}
	}
	check("running current", run, false, 2, false)
	check("running previous", run, true, 1, false)
	check("backoff current", backoff, false, 1, false)
	check("backoff previous", backoff, true, 1, false)
	check("terminated current", done, false, 0, false)
	check("terminated previous", done, true, 0, true)
	check("creating", creating, false, 0, true)
}

func TestShouldRestart(t *testing.T) {
	cases := []struct {
		policy corev1.RestartPolicy
		init   bool
		code   int32
		want   bool
	}{
		{corev1.RestartPolicyNever, false, 1, false},
		{corev1.RestartPolicyNever, true, 1, false},
		{corev1.RestartPolicyOnFailure, false, 0, false},
		{corev1.RestartPolicyOnFailure, false, 3, true},
		{corev1.RestartPolicyAlways, false, 0, true},
		{corev1.RestartPolicyAlways, true, 0, false},
		{corev1.RestartPolicyAlways, true, 1, true},
	}
	for _, c := range cases {
		if got := shouldRestart(c.policy, c.init, c.code); got != c.want {
			t.Errorf("shouldRestart(%s, init=%v, %d) = %v", c.policy, c.init, c.code, got)
		}
	}
}
