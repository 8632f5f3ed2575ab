package main

// The kubelet containerLogs endpoint, behind the API server's pods/log.
//
// virtual-kubelet's node/api package parses the query and calls
// GetContainerLogs; we find the container instance from the pod's status
// (kubelet's rules, see logInstance) and stream its log file.

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"strings"
	"time"

	"github.com/virtual-kubelet/virtual-kubelet/errdefs"
	"github.com/virtual-kubelet/virtual-kubelet/node/api"
	corev1 "k8s.io/api/core/v1"
)

type tailZeroKey struct{}

// logsMiddleware adapts the library's containerLogs handler:
//   - api.ContainerLogOpts uses 0 for "tailLines not set", but kubelet returns
//     no lines for an explicit 0, so such requests are marked in the context;
//   - a client that hangs up early (the gateway reads pages of a log and
//     closes the stream) would make the handler log an internal server error
//     per request; instead a failed write cancels the request context, which
//     ends our log reader with a clean EOF.
func logsMiddleware(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/containerLogs/") {
			h.ServeHTTP(w, r)
			return
		}
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		if r.URL.Query().Get("tailLines") == "0" {
			ctx = context.WithValue(ctx, tailZeroKey{}, true)
		}
		h.ServeHTTP(&hangupWriter{ResponseWriter: w, hangup: cancel}, r.WithContext(ctx))
	})
}

type hangupWriter struct {
	http.ResponseWriter
	hangup func()
	gone   bool
}

func (w *hangupWriter) Write(p []byte) (int, error) {
	if w.gone {
		return len(p), nil
	}
	if _, err := w.ResponseWriter.Write(p); err != nil {
		w.gone = true
		w.hangup()
	}
	return len(p), nil
}

func (w *hangupWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok && !w.gone {
		f.Flush()
	}
}

func (p *Provider) GetContainerLogs(ctx context.Context, namespace, podName, containerName string, opts api.ContainerLogOpts) (io.ReadCloser, error) {
	pod, err := p.podForLogs(namespace, podName)
	if err != nil {
		return nil, err
	}
	cs := findContainerStatus(pod, containerName)
	if cs == nil {
		return nil, errdefs.InvalidInputf("container %s is not valid for pod %s", containerName, podName)
	}
	idx, err := logInstance(cs, opts.Previous, podName)
	if err != nil {
		return nil, errdefs.AsInvalidInput(err)
	}
	path := logPath(p.podLogDir(pod), containerName, idx)

	ro := logReadOptions{
		tail:       -1,
		limitBytes: opts.LimitBytes,
		timestamps: opts.Timestamps,
		since:      opts.SinceTime,
		follow:     opts.Follow,
	}
	if opts.Tail > 0 || ctx.Value(tailZeroKey{}) != nil {
		ro.tail = opts.Tail
	}
	if opts.SinceSeconds > 0 {
		ro.since = time.Now().Add(-time.Duration(opts.SinceSeconds) * time.Second)
	}
	rc, err := openLogReader(ctx, path, ro, p.lives.get(path))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errdefs.NotFoundf("no log file for container %q in pod %s/%s on this node", containerName, namespace, podName)
	}
	return rc, err
}

// podForLogs prefers the agent's own view, which is never behind the API
// server, and falls back to the pod cache for pods from before an agent
// restart.
func (p *Provider) podForLogs(namespace, name string) (*corev1.Pod, error) {
	if pr := p.get(namespace, name); pr != nil {
		return pr.view(pr.baseStatus()), nil
	}
	if p.pods != nil {
		if pod, err := p.pods.Pods(namespace).Get(name); err == nil {
			return pod, nil
		}
	}
	return nil, errdefs.NotFoundf("pod %s/%s not found on this node", namespace, name)
}

func findContainerStatus(pod *corev1.Pod, name string) *corev1.ContainerStatus {
	for _, list := range [][]corev1.ContainerStatus{pod.Status.ContainerStatuses, pod.Status.InitContainerStatuses} {
		for i := range list {
			if list[i].Name == name {
				return &list[i]
			}
		}
	}
	return nil
}
