package main

// The virtual-kubelet provider: the pod lifecycle calls the library makes for
// pods bound to this node, mapped onto pod supervisors (podrun.go).

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/virtual-kubelet/virtual-kubelet/errdefs"
	"github.com/virtual-kubelet/virtual-kubelet/node/api"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	corev1listers "k8s.io/client-go/listers/core/v1"
	statsv1alpha1 "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

type providerConfig struct {
	nodeName  string
	stateDir  string
	crashBase time.Duration
	crashMax  time.Duration
}

type Provider struct {
	cfg        providerConfig
	client     kubernetes.Interface
	pods       corev1listers.PodLister
	configMaps corev1listers.ConfigMapLister
	secrets    corev1listers.SecretLister
	lives      *liveLogs

	mu   sync.Mutex
	runs map[string]*podRun // by namespace/name
}

func newProvider(cfg providerConfig, client kubernetes.Interface) *Provider {
	return &Provider{cfg: cfg, client: client, lives: newLiveLogs(), runs: map[string]*podRun{}}
}

// podDir is where a pod's working directory, emptyDirs and pid files live:
// <state>/pods/<namespace>_<name>_<uid>.
func (p *Provider) podDir(pod *corev1.Pod) string {
	return filepath.Join(p.cfg.stateDir, "pods", podDirName(pod))
}

// podLogDir is where a pod's container logs live, laid out as kubelet lays out
// /var/log/pods: <state>/pod-logs/<namespace>_<name>_<uid>/<container>/<n>.log,
// so that a node collector reads both nodes' files the same way.
func (p *Provider) podLogDir(pod *corev1.Pod) string {
	return filepath.Join(p.cfg.stateDir, podLogsDir, podDirName(pod))
}

const podLogsDir = "pod-logs"

func podDirName(pod *corev1.Pod) string {
	return pod.Namespace + "_" + pod.Name + "_" + string(pod.UID)
}

func (p *Provider) envSources() envSources {
	var src envSources
	if p.configMaps != nil {
		src.configMap = func(ns, name string) (*corev1.ConfigMap, error) { return p.configMaps.ConfigMaps(ns).Get(name) }
	}
	if p.secrets != nil {
		src.secret = func(ns, name string) (*corev1.Secret, error) { return p.secrets.Secrets(ns).Get(name) }
	}
	return src
}

func (p *Provider) get(namespace, name string) *podRun {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.runs[namespace+"/"+name]
}

// CreatePod starts supervising a pod newly bound to the node.
func (p *Provider) CreatePod(ctx context.Context, pod *corev1.Pod) error {
	key := pod.Namespace + "/" + pod.Name
	p.mu.Lock()
	if old := p.runs[key]; old != nil && old.uid == string(pod.UID) {
		p.mu.Unlock()
		return nil
	}
	pr := newPodRun(p, pod)
	p.runs[key] = pr
	p.mu.Unlock()
	slog.Info("pod accepted", "pod", key, "uid", pod.UID)
	go pr.run()
	return nil
}

// UpdatePod takes metadata changes; a running pod's spec cannot change in
// ways that matter to a host process.
func (p *Provider) UpdatePod(ctx context.Context, pod *corev1.Pod) error {
	pr := p.get(pod.Namespace, pod.Name)
	if pr == nil || pr.uid != string(pod.UID) {
		return errdefs.NotFoundf("pod %s/%s is not known", pod.Namespace, pod.Name)
	}
	pr.mu.Lock()
	pr.pod.ObjectMeta = *pod.ObjectMeta.DeepCopy()
	pr.mu.Unlock()
	return nil
}

// DeletePod stops the pod's processes: SIGTERM now, SIGKILL after the grace
// period. When they are gone the final status is written, the pod object is
// removed from the API server (as kubelet does once a deleted pod's
// containers have stopped) and its state directory is removed.
func (p *Provider) DeletePod(ctx context.Context, pod *corev1.Pod) error {
	pr := p.get(pod.Namespace, pod.Name)
	if pr == nil || (pod.UID != "" && pr.uid != string(pod.UID)) {
		return errdefs.NotFoundf("pod %s/%s is not known", pod.Namespace, pod.Name)
	}
	pr.stop(gracePeriod(pod))
	slog.Info("pod stopping", "pod", pr.key, "grace", gracePeriod(pod))
	go p.finishDelete(pr)
	return nil
}

func gracePeriod(pod *corev1.Pod) time.Duration {
	switch {
	case pod.DeletionGracePeriodSeconds != nil:
		return time.Duration(*pod.DeletionGracePeriodSeconds) * time.Second
	case pod.Spec.TerminationGracePeriodSeconds != nil:
		return time.Duration(*pod.Spec.TerminationGracePeriodSeconds) * time.Second
	}
	return 30 * time.Second
}

func (p *Provider) finishDelete(pr *podRun) {
	<-pr.doneCh
	p.mu.Lock()
	if p.runs[pr.key] != pr {
		p.mu.Unlock()
		return // another DeletePod call is finishing it
	}
	delete(p.runs, pr.key)
	p.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p.writeStatus(ctx, pr)
	ns, name, _ := splitKey(pr.key)
	if cur, err := p.client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{}); err == nil &&
		string(cur.UID) == pr.uid && cur.DeletionTimestamp != nil {
		uid := cur.UID
		err := p.client.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{
			GracePeriodSeconds: new(int64),
			Preconditions:      &metav1.Preconditions{UID: &uid},
		})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			slog.Warn("deleting stopped pod from the API server", "pod", pr.key, "err", err)
		}
	}
	for _, dir := range []string{pr.dir, pr.logDir} {
		if err := os.RemoveAll(dir); err != nil {
			slog.Warn("removing pod state", "pod", pr.key, "err", err)
		}
	}
	slog.Info("pod removed", "pod", pr.key)
}

// GetPod returns the pod as the agent sees it.
func (p *Provider) GetPod(ctx context.Context, namespace, name string) (*corev1.Pod, error) {
	pr := p.get(namespace, name)
	if pr == nil {
		return nil, errdefs.NotFoundf("pod %s/%s is not known", namespace, name)
	}
	return pr.view(pr.baseStatus()), nil
}

func (p *Provider) GetPodStatus(ctx context.Context, namespace, name string) (*corev1.PodStatus, error) {
	pod, err := p.GetPod(ctx, namespace, name)
	if err != nil {
		return nil, err
	}
	return &pod.Status, nil
}

func (p *Provider) GetPods(ctx context.Context) ([]*corev1.Pod, error) {
	p.mu.Lock()
	runs := make([]*podRun, 0, len(p.runs))
	for _, pr := range p.runs {
		runs = append(runs, pr)
	}
	p.mu.Unlock()
	out := make([]*corev1.Pod, 0, len(runs))
	for _, pr := range runs {
		out = append(out, pr.view(pr.baseStatus()))
	}
	return out, nil
}

// NotifyPods makes the provider asynchronous in virtual-kubelet's eyes, so
// the library does not poll GetPodStatus. The callback is deliberately not
// used: the library writes status by PUTting the provider's copy of the whole
// pod, which would restore stale labels or finalizers (such as the Job
// controller's batch.kubernetes.io/job-tracking) that others removed in the
// meantime. statussync.go writes status with optimistic concurrency instead.
func (p *Provider) NotifyPods(ctx context.Context, cb func(*corev1.Pod)) {}

// shutdown stops every container when the agent exits, because the next
// agent cannot adopt processes it did not start (see recovery.go). The pods
// are reported Failed with reason NodeAgentStopped where the API server can
// still be reached; the next agent fails whatever is left over.
func (p *Provider) shutdown(grace time.Duration) {
	p.mu.Lock()
	runs := make([]*podRun, 0, len(p.runs))
	for _, pr := range p.runs {
		runs = append(runs, pr)
	}
	p.mu.Unlock()
	for _, pr := range runs {
		pr.mu.Lock()
		if !pr.facts.finished {
			pr.facts.reason = reasonNodeAgentStopped
			pr.facts.message = "the tenx node agent stopped and killed the pod's processes"
		}
		pr.mu.Unlock()
		pr.stop(grace)
	}
	deadline := time.NewTimer(grace + time.Second)
	defer deadline.Stop()
wait:
	for _, pr := range runs {
		select {
		case <-pr.doneCh:
		case <-deadline.C:
			break wait
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, pr := range runs {
		p.writeStatus(ctx, pr)
	}
}

// The kubelet API calls below are not supported by a host-process agent.

func (p *Provider) RunInContainer(ctx context.Context, namespace, podName, containerName string, cmd []string, attach api.AttachIO) error {
	return errdefs.InvalidInput("exec is not supported by the tenx node agent")
}

func (p *Provider) AttachToContainer(ctx context.Context, namespace, podName, containerName string, attach api.AttachIO) error {
	return errdefs.InvalidInput("attach is not supported by the tenx node agent")
}

func (p *Provider) PortForward(ctx context.Context, namespace, pod string, port int32, stream io.ReadWriteCloser) error {
	return errdefs.InvalidInput("port-forward is not supported by the tenx node agent")
}

func (p *Provider) GetStatsSummary(ctx context.Context) (*statsv1alpha1.Summary, error) {
	return &statsv1alpha1.Summary{Node: statsv1alpha1.NodeStats{NodeName: p.cfg.nodeName, StartTime: metav1.Now()}}, nil
}

func (p *Provider) GetMetricsResource(ctx context.Context) ([]*dto.MetricFamily, error) {
	return nil, nil
}
