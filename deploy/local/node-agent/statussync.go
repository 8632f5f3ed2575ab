package main

// Writing pod status to the API server.
//
// Every change marks the pod dirty; one goroutine per pod at a time writes
// the latest view, so bursts of changes coalesce and writes never go out of
// order. A write reads the current object, replaces only its status and PUTs
// it with that object's resourceVersion: on a conflict it reads again, so
// metadata that others changed (labels, finalizers) is never overwritten.

import (
	"context"
	"log/slog"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// publish schedules a status write for the pod's current state.
func (pr *podRun) publish() {
	pr.mu.Lock()
	pr.dirty = true
	if pr.publishing {
		pr.mu.Unlock()
		return
	}
	pr.publishing = true
	pr.mu.Unlock()
	go func() {
		retry := 250 * time.Millisecond
		for {
			pr.mu.Lock()
			if !pr.dirty {
				pr.publishing = false
				pr.mu.Unlock()
				return
			}
			pr.dirty = false
			pr.mu.Unlock()

			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			err := pr.p.writeStatus(ctx, pr)
			cancel()
			if err == nil {
				retry = 250 * time.Millisecond
				continue
			}
			// The API server may be restarting: keep the update and retry,
			// as long as the pod is still ours.
			slog.Warn("writing pod status", "pod", pr.key, "err", err)
			if ns, name, _ := splitKey(pr.key); pr.p.get(ns, name) != pr {
				pr.mu.Lock()
				pr.publishing = false
				pr.mu.Unlock()
				return
			}
			time.Sleep(retry)
			retry = min(2*retry, 5*time.Second)
			pr.mu.Lock()
			pr.dirty = true
			pr.mu.Unlock()
		}
	}()
}

// baseStatus is the API server's status of the pod as last seen, falling
// back to the status the pod had when it was created in the agent.
func (pr *podRun) baseStatus() corev1.PodStatus {
	ns, name, _ := splitKey(pr.key)
	if pr.p.pods != nil {
		if cur, err := pr.p.pods.Pods(ns).Get(name); err == nil && string(cur.UID) == pr.uid {
			return cur.Status
		}
	}
	pr.mu.Lock()
	defer pr.mu.Unlock()
	return pr.pod.Status
}

// writeStatus writes the pod's current view. It returns nil when the write
// succeeded or is moot (pod gone, replaced, or already terminal).
func (p *Provider) writeStatus(ctx context.Context, pr *podRun) error {
	pr.writeMu.Lock()
	defer pr.writeMu.Unlock()
	ns, name, _ := splitKey(pr.key)
	pods := p.client.CoreV1().Pods(ns)

	var cur *corev1.Pod
	if p.pods != nil {
		if c, err := p.pods.Pods(ns).Get(name); err == nil && string(c.UID) == pr.uid {
			cur = c
		}
	}
	for attempt := 0; ; attempt++ {
		if cur == nil {
			c, err := pods.Get(ctx, name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return nil
			}
			if err != nil {
				return err
			}
			cur = c
		}
		if string(cur.UID) != pr.uid {
			return nil
		}
		if cur.Status.Phase == corev1.PodSucceeded || cur.Status.Phase == corev1.PodFailed {
			return nil // terminal phases are final
		}
		upd := cur.DeepCopy()
		upd.Status = pr.view(cur.Status).Status
		if equality.Semantic.DeepEqual(upd.Status, cur.Status) {
			return nil
		}
		_, err := pods.UpdateStatus(ctx, upd, metav1.UpdateOptions{})
		switch {
		case err == nil, apierrors.IsNotFound(err):
			return nil
		case apierrors.IsConflict(err) && attempt < 20:
			cur = nil
			continue
		default:
			return err
		}
	}
}

func splitKey(key string) (namespace, name string, ok bool) {
	return strings.Cut(key, "/")
}
