package main

// Provider tests against client-go's fake clientset: real processes, fake
// API server.

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/virtual-kubelet/virtual-kubelet/node/api"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
)

func testProvider(t *testing.T) (*Provider, *fake.Clientset) {
	t.Helper()
	client := fake.NewSimpleClientset()
	p := newProvider(providerConfig{
		nodeName: "tenx-local", stateDir: t.TempDir(),
		crashBase: 20 * time.Millisecond, crashMax: 80 * time.Millisecond,
	}, client)
	t.Cleanup(func() { p.shutdown(time.Second) })
	return p, client
}

func testPod(t *testing.T, client *fake.Clientset, name string, policy corev1.RestartPolicy, cmd ...string) *corev1.Pod {
	t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID(name + "-uid")},
		Spec: corev1.PodSpec{
			NodeName: "tenx-local", RestartPolicy: policy,
			Containers: []corev1.Container{{Name: "main", Image: "ignored", Command: cmd}},
		},
		Status: corev1.PodStatus{Phase: corev1.PodPending, QOSClass: corev1.PodQOSBestEffort},
	}
	created, err := client.CoreV1().Pods("ns").Create(context.Background(), pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return created
}

// waitPod polls the fake API server until cond holds for the pod.
func waitPod(t *testing.T, client *fake.Clientset, name string, what string, cond func(*corev1.Pod) bool) *corev1.Pod {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		pod, err := client.CoreV1().Pods("ns").Get(context.Background(), name, metav1.GetOptions{})
		if err == nil && cond(pod) {
			return pod
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; last: %+v", what, pod.Status)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func logsOf(t *testing.T, p *Provider, name string, opts api.ContainerLogOpts) string {
	t.Helper()
	rc, err := p.GetContainerLogs(context.Background(), "ns", name, "main", opts)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestPodSucceedsWithLogs(t *testing.T) {
	p, client := testProvider(t)
	pod := testPod(t, client, "ok", corev1.RestartPolicyNever, "echo", "test-cmd")
	if err := p.CreatePod(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
	got := waitPod(t, client, "ok", "Succeeded", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodSucceeded })
	cs := got.Status.ContainerStatuses[0]
	if term := cs.State.Terminated; term == nil || term.ExitCode != 0 || term.Reason != "Completed" || term.FinishedAt.IsZero() {
		t.Fatalf("container state %+v", cs.State)
	}
	if got.Status.PodIP != nodeIP || got.Status.QOSClass != corev1.PodQOSBestEffort || got.Status.StartTime == nil {
		t.Fatalf("status %+v", got.Status)
	}
	if s := logsOf(t, p, "ok", api.ContainerLogOpts{}); s != "test-cmd\n" {
		t.Fatalf("logs %q", s)
	}
}

func TestPodFailsWithExitCode(t *testing.T) {
	p, client := testProvider(t)
	pod := testPod(t, client, "bad", corev1.RestartPolicyNever, "sh", "-c", "exit 7")
	p.CreatePod(context.Background(), pod)
	got := waitPod(t, client, "bad", "Failed", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
	if term := got.Status.ContainerStatuses[0].State.Terminated; term == nil || term.ExitCode != 7 || term.Reason != "Error" {
		t.Fatalf("container state %+v", got.Status.ContainerStatuses[0].State)
	}
}

func TestPodWithoutCommandFails(t *testing.T) {
	p, client := testProvider(t)
	pod := testPod(t, client, "nocmd", corev1.RestartPolicyOnFailure)
	p.CreatePod(context.Background(), pod)
	got := waitPod(t, client, "nocmd", "Failed", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
	if got.Status.Reason != reasonEntrypointUnsupported || !strings.Contains(got.Status.Message, "default entrypoint") {
		t.Fatalf("status %+v", got.Status)
	}
	if term := got.Status.ContainerStatuses[0].State.Terminated; term == nil || term.Reason != reasonEntrypointUnsupported {
		t.Fatalf("container state %+v", got.Status.ContainerStatuses[0].State)
	}
}

func TestOnFailureRestartsWithBackoffAndPreviousLogs(t *testing.T) {
	p, client := testProvider(t)
	pod := testPod(t, client, "crash", corev1.RestartPolicyOnFailure, "sh", "-c", "echo boom; exit 3")
	p.CreatePod(context.Background(), pod)
	got := waitPod(t, client, "crash", "restartCount >= 2", func(p *corev1.Pod) bool {
		return len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].RestartCount >= 2
	})
	if got.Status.Phase != corev1.PodRunning {
		t.Fatalf("phase %s during crash loop", got.Status.Phase)
	}
	got = waitPod(t, client, "crash", "CrashLoopBackOff", func(p *corev1.Pod) bool {
		cs := p.Status.ContainerStatuses[0]
		return cs.State.Waiting != nil && cs.State.Waiting.Reason == reasonCrashLoopBackOff
	})
	last := got.Status.ContainerStatuses[0].LastTerminationState.Terminated
	if last == nil || last.ExitCode != 3 {
		t.Fatalf("lastState %+v", got.Status.ContainerStatuses[0].LastTerminationState)
	}
	if s := logsOf(t, p, "crash", api.ContainerLogOpts{Previous: true}); s != "boom\n" {
		t.Fatalf("previous logs %q", s)
	}
}

func TestDeletePodStopsProcessAndReportsTerminal(t *testing.T) {
	p, client := testProvider(t)
	pod := testPod(t, client, "sleeper", corev1.RestartPolicyAlways, "sleep", "300")
	p.CreatePod(context.Background(), pod)
	waitPod(t, client, "sleeper", "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	pr := p.get("ns", "sleeper")
	pr.mu.Lock()
	pid := pr.mains[0].proc.pid
	pr.mu.Unlock()

	p.DeletePod(context.Background(), pod)
	select {
	case <-pr.doneCh:
	case <-time.After(10 * time.Second):
		t.Fatal("pod did not stop")
	}
	if _, err := procStartTime(pid); err == nil {
		t.Fatalf("process %d still exists", pid)
	}
	got := waitPod(t, client, "sleeper", "Failed", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
	if term := got.Status.ContainerStatuses[0].State.Terminated; term == nil || term.ExitCode != 143 {
		t.Fatalf("container state %+v", got.Status.ContainerStatuses[0].State)
	}
}

func TestInitContainersRunFirstAndShareTheWorkDir(t *testing.T) {
	p, client := testProvider(t)
	pod := testPod(t, client, "init", corev1.RestartPolicyNever, "cat", "prepared.txt")
	pod.Spec.InitContainers = []corev1.Container{
		{Name: "setup-1", Command: []string{"sh", "-c", "echo one > prepared.txt"}},
		{Name: "setup-2", Command: []string{"sh", "-c", "echo two >> prepared.txt"}},
	}
	if _, err := client.CoreV1().Pods("ns").Update(context.Background(), pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	p.CreatePod(context.Background(), pod)
	got := waitPod(t, client, "init", "Succeeded", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodSucceeded })
	for _, cs := range got.Status.InitContainerStatuses {
		if term := cs.State.Terminated; term == nil || term.ExitCode != 0 {
			t.Fatalf("init container %s: %+v", cs.Name, cs.State)
		}
	}
	if s := logsOf(t, p, "init", api.ContainerLogOpts{}); s != "one\ntwo\n" {
		t.Fatalf("logs %q", s)
	}
}

func TestFailedInitContainerFailsPodWithRestartNever(t *testing.T) {
	p, client := testProvider(t)
	pod := testPod(t, client, "initfail", corev1.RestartPolicyNever, "echo", "never")
	pod.Spec.InitContainers = []corev1.Container{{Name: "setup", Command: []string{"false"}}}
	client.CoreV1().Pods("ns").Update(context.Background(), pod, metav1.UpdateOptions{})
	p.CreatePod(context.Background(), pod)
	got := waitPod(t, client, "initfail", "Failed", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
	if term := got.Status.ContainerStatuses[0].State.Terminated; term == nil || term.Reason != reasonStatusUnknown {
		t.Fatalf("main container of a pod whose init failed: %+v", got.Status.ContainerStatuses[0].State)
	}
}
