package main

// The environment of a container process.
//
// A container gets a small base environment (PATH, HOSTNAME, HOME) overridden
// by its envFrom and env entries, resolved the way kubelet does: envFrom
// first, then env in order, each value $(VAR)-expanded against the variables
// defined before it. Unlike kubelet we never add service variables
// (KUBERNETES_SERVICE_HOST and friends): the cluster's service range is not
// reachable from host processes, and nothing may be sent there.

import (
	"fmt"
	"log/slog"
	"os"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// envSources looks up the objects that env entries may reference. Either
// function may be nil, in which case such references fail (or are skipped
// when optional).
type envSources struct {
	configMap func(namespace, name string) (*corev1.ConfigMap, error)
	secret    func(namespace, name string) (*corev1.Secret, error)
}

// orderedEnv keeps variables in definition order with later definitions
// replacing earlier ones in place.
type orderedEnv struct {
	names []string
	vals  map[string]string
}

func newOrderedEnv() *orderedEnv { return &orderedEnv{vals: map[string]string{}} }

func (e *orderedEnv) set(k, v string) {
	if _, ok := e.vals[k]; !ok {
		e.names = append(e.names, k)
	}
	e.vals[k] = v
}

func (e *orderedEnv) lookup(k string) (string, bool) {
	v, ok := e.vals[k]
	return v, ok
}

func (e *orderedEnv) list() []string {
	out := make([]string, 0, len(e.names))
	for _, k := range e.names {
		out = append(out, k+"="+e.vals[k])
	}
	return out
}

// resolveContainerEnv returns the variables the container defines itself
// (envFrom and env), which are also the variables that $(VAR) references in
// command and args may use.
func resolveContainerEnv(pod *corev1.Pod, c *corev1.Container, src envSources) (*orderedEnv, error) {
	env := newOrderedEnv()
	for _, from := range c.EnvFrom {
		data, err := envFromData(pod.Namespace, from, src)
		if err != nil {
			return nil, err
		}
		for k, v := range data {
			env.set(from.Prefix+k, v)
		}
	}
	for _, ev := range c.Env {
		if ev.ValueFrom == nil {
			env.set(ev.Name, expandVars(ev.Value, env.lookup))
			continue
		}
		v, ok, err := envValueFrom(pod, c, ev, src)
		if err != nil {
			return nil, err
		}
		if ok {
			env.set(ev.Name, v)
		}
	}
	return env, nil
}

// processEnv is the full environment of the container process: the base
// variables, then the container's own (which may override them).
func processEnv(pod *corev1.Pod, own *orderedEnv) []string {
	env := newOrderedEnv()
	env.set("PATH", defaultPath)
	hostname := pod.Name
	if pod.Spec.Hostname != "" {
		hostname = pod.Spec.Hostname
	}
	env.set("HOSTNAME", hostname)
	home := os.Getenv("HOME")
	if home == "" {
		home = "/root"
	}
	env.set("HOME", home)
	for _, k := range own.names {
		env.set(k, own.vals[k])
	}
	return env.list()
}

func envFromData(namespace string, from corev1.EnvFromSource, src envSources) (map[string]string, error) {
	switch {
	case from.ConfigMapRef != nil:
		optional := from.ConfigMapRef.Optional != nil && *from.ConfigMapRef.Optional
		if src.configMap == nil {
			return nil, missingRef(optional, "configmap", from.ConfigMapRef.Name)
		}
		cm, err := src.configMap(namespace, from.ConfigMapRef.Name)
		if err != nil {
			return nil, missingRef(optional, "configmap", from.ConfigMapRef.Name)
		}
		return cm.Data, nil
	case from.SecretRef != nil:
		optional := from.SecretRef.Optional != nil && *from.SecretRef.Optional
		if src.secret == nil {
			return nil, missingRef(optional, "secret", from.SecretRef.Name)
		}
		s, err := src.secret(namespace, from.SecretRef.Name)
		if err != nil {
			return nil, missingRef(optional, "secret", from.SecretRef.Name)
		}
		out := make(map[string]string, len(s.Data))
		for k, v := range s.Data {
			out[k] = string(v)
		}
		return out, nil
	}
	return nil, nil
}

// missingRef is nil for optional references, which are then skipped.
func missingRef(optional bool, kind, name string) error {
	if optional {
		return nil
	}
	return fmt.Errorf("%s %q not found", kind, name)
}

// envValueFrom resolves one valueFrom entry. ok is false when the variable
// should not be set (an optional reference that is missing, or a source this
// agent does not support, which is logged).
func envValueFrom(pod *corev1.Pod, c *corev1.Container, ev corev1.EnvVar, src envSources) (string, bool, error) {
	vf := ev.ValueFrom
	switch {
	case vf.FieldRef != nil:
		v, err := podFieldValue(pod, vf.FieldRef.FieldPath)
		if err != nil {
			slog.Warn("ignoring env var with unsupported fieldRef", "pod", pod.Namespace+"/"+pod.Name,
				"container", c.Name, "var", ev.Name, "fieldPath", vf.FieldRef.FieldPath)
			return "", false, nil
		}
		return v, true, nil
	case vf.ConfigMapKeyRef != nil:
		ref := vf.ConfigMapKeyRef
		optional := ref.Optional != nil && *ref.Optional
		if src.configMap != nil {
			if cm, err := src.configMap(pod.Namespace, ref.Name); err == nil {
				if v, ok := cm.Data[ref.Key]; ok {
					return v, true, nil
				}
			}
		}
		if optional {
			return "", false, nil
		}
		return "", false, fmt.Errorf("couldn't find key %s in configmap %s/%s", ref.Key, pod.Namespace, ref.Name)
	case vf.SecretKeyRef != nil:
		ref := vf.SecretKeyRef
		optional := ref.Optional != nil && *ref.Optional
		if src.secret != nil {
			if s, err := src.secret(pod.Namespace, ref.Name); err == nil {
				if v, ok := s.Data[ref.Key]; ok {
					return string(v), true, nil
				}
			}
		}
		if optional {
			return "", false, nil
		}
		return "", false, fmt.Errorf("couldn't find key %s in secret %s/%s", ref.Key, pod.Namespace, ref.Name)
	default:
		slog.Warn("ignoring env var with unsupported valueFrom (resourceFieldRef, fileKeyRef, ...)",
			"pod", pod.Namespace+"/"+pod.Name, "container", c.Name, "var", ev.Name)
		return "", false, nil
	}
}

// podFieldValue implements the downward API field paths that make sense for
// a host process.
func podFieldValue(pod *corev1.Pod, path string) (string, error) {
	switch path {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.hostIP", "status.podIP":
		return nodeIP, nil
	case "status.hostIPs", "status.podIPs":
		return nodeIP, nil
	}
	for prefix, m := range map[string]map[string]string{
		"metadata.labels":      pod.Labels,
		"metadata.annotations": pod.Annotations,
	} {
		if key, ok := strings.CutPrefix(path, prefix+"['"); ok && strings.HasSuffix(key, "']") {
			return m[strings.TrimSuffix(key, "']")], nil
		}
	}
	return "", fmt.Errorf("unsupported fieldPath %q", path)
}

// expandCommand applies $(VAR) expansion to command and args, as kubelet does.
func expandCommand(c *corev1.Container, own *orderedEnv) []string {
	argv := make([]string, 0, len(c.Command)+len(c.Args))
	for _, s := range c.Command {
		argv = append(argv, expandVars(s, own.lookup))
	}
	for _, s := range c.Args {
		argv = append(argv, expandVars(s, own.lookup))
	}
	return argv
}
