package main

import (
	"errors"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestContainerEnvAndCommandExpansion(t *testing.T) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p1", Namespace: "ns1", UID: "u1", Labels: map[string]string{"app": "x"}},
		Spec:       corev1.PodSpec{NodeName: "tenx-local"},
	}
	opt := true
	c := &corev1.Container{
		Name:    "main",
		Command: []string{"sh", "-c"},
		Args:    []string{"echo $(GREETING) $(POD) $$(GREETING) $(UNDEFINED)"},
		Env: []corev1.EnvVar{
			{Name: "WHO", Value: "world"},
			{Name: "GREETING", Value: "hello-$(WHO)"},
			{Name: "POD", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
			{Name: "NS", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
			{Name: "APP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels['app']"}}},
			{Name: "CPU", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.cpu"}}},
			{Name: "OPT", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: "missing"}, Key: "k", Optional: &opt}}},
			{Name: "PATH", Value: "/opt/bin:/usr/bin"},
		},
	}
	own, err := resolveContainerEnv(pod, c, envSources{})
	if err != nil {
		t.Fatal(err)
	}
	env := processEnv(pod, own)
	for _, want := range []string{"WHO=world", "GREETING=hello-world", "POD=p1", "NS=ns1", "APP=x", "HOSTNAME=p1", "PATH=/opt/bin:/usr/bin"} {
		if !slices.Contains(env, want) {
			t.Errorf("env lacks %q: %v", want, env)
		}
	}
	for _, v := range env {
		for _, bad := range []string{"CPU=", "OPT=", "KUBERNETES_SERVICE_HOST=", "KUBERNETES_SERVICE_PORT="} {
			if len(v) >= len(bad) && v[:len(bad)] == bad {
				t.Errorf("env has %q", v)
			}
		}
	}
	argv := expandCommand(c, own)
	want := []string{"sh", "-c", "echo hello-world p1 $(GREETING) $(UNDEFINED)"}
	if !slices.Equal(argv, want) {
		t.Fatalf("argv %q, want %q", argv, want)
	}
}

func TestContainerEnvRequiredRefs(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns"}}
	c := &corev1.Container{Name: "c", Env: []corev1.EnvVar{{Name: "S", ValueFrom: &corev1.EnvVarSource{
		SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "s"}, Key: "k"}}}}}
	if _, err := resolveContainerEnv(pod, c, envSources{}); err == nil {
		t.Fatal("missing required secret did not fail")
	}
	src := envSources{
		secret: func(ns, name string) (*corev1.Secret, error) {
			if ns == "ns" && name == "s" {
				return &corev1.Secret{Data: map[string][]byte{"k": []byte("v")}}, nil
			}
			return nil, errors.New("not found")
		},
		configMap: func(ns, name string) (*corev1.ConfigMap, error) {
			return &corev1.ConfigMap{Data: map[string]string{"A": "1", "B": "2"}}, nil
		},
	}
	c.EnvFrom = []corev1.EnvFromSource{{Prefix: "CM_", ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}}}}
	own, err := resolveContainerEnv(pod, c, src)
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"S": "v", "CM_A": "1", "CM_B": "2"} {
		if v, _ := own.lookup(k); v != want {
			t.Errorf("%s=%q, want %q", k, v, want)
		}
	}
}
