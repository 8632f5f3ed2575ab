package main

// Pod volumes.
//
// Supported: hostPath (bind-mounted from the host) and emptyDir (a directory
// under the pod's state dir, shared by the pod's containers and removed with
// the pod). Everything else -- the projected service-account token that the
// ServiceAccount admission plugin adds to every pod, configMap, secret, ... --
// is skipped with a log line; a process that needs such a file will not find
// it, but the pod still runs.

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
)

// prepareVolumes creates what the pod's volumes need on the host, checking
// hostPath types the way kubelet does. It runs once per pod.
func prepareVolumes(pod *corev1.Pod, podDir string) error {
	for _, v := range pod.Spec.Volumes {
		switch {
		case v.HostPath != nil:
			if err := prepareHostPath(v.HostPath); err != nil {
				return fmt.Errorf("volume %q: %w", v.Name, err)
			}
		case v.EmptyDir != nil:
			if err := os.MkdirAll(emptyDirPath(podDir, v.Name), 0o777); err != nil {
				return fmt.Errorf("volume %q: %w", v.Name, err)
			}
		default:
			slog.Info("ignoring unsupported volume type (only hostPath and emptyDir are mounted)",
				"pod", pod.Namespace+"/"+pod.Name, "volume", v.Name)
		}
	}
	return nil
}

func emptyDirPath(podDir, name string) string {
	return filepath.Join(podDir, "volumes", name)
}

func prepareHostPath(hp *corev1.HostPathVolumeSource) error {
	typ := corev1.HostPathUnset
	if hp.Type != nil {
		typ = *hp.Type
	}
	st, err := os.Stat(hp.Path)
	exists := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	switch typ {
	case corev1.HostPathUnset, corev1.HostPathDirectoryOrCreate:
		// An unset type would not be checked by kubelet; Docker-style, we
		// create a missing source as a directory. An existing file (such as
		// /etc/localtime) is used as it is.
		if !exists {
			return os.MkdirAll(hp.Path, 0o755)
		}
	case corev1.HostPathFileOrCreate:
		if !exists {
			if err := os.MkdirAll(filepath.Dir(hp.Path), 0o755); err != nil {
				return err
			}
			f, err := os.OpenFile(hp.Path, os.O_CREATE|os.O_WRONLY, 0o644)
			if err != nil {
				return err
			}
			return f.Close()
		}
		if st.IsDir() {
			return fmt.Errorf("hostPath %s exists but is a directory", hp.Path)
		}
	case corev1.HostPathDirectory:
		if !exists || !st.IsDir() {
			return fmt.Errorf("hostPath type check failed: %s is not a directory", hp.Path)
		}
	case corev1.HostPathFile:
		if !exists || !st.Mode().IsRegular() {
			return fmt.Errorf("hostPath type check failed: %s is not a file", hp.Path)
		}
	case corev1.HostPathSocket:
		if !exists || st.Mode()&fs.ModeSocket == 0 {
			return fmt.Errorf("hostPath type check failed: %s is not a socket file", hp.Path)
		}
	case corev1.HostPathCharDev:
		if !exists || st.Mode()&fs.ModeCharDevice == 0 {
			return fmt.Errorf("hostPath type check failed: %s is not a character device", hp.Path)
		}
	case corev1.HostPathBlockDev:
		if !exists || st.Mode()&fs.ModeDevice == 0 || st.Mode()&fs.ModeCharDevice != 0 {
			return fmt.Errorf("hostPath type check failed: %s is not a block device", hp.Path)
		}
	}
	return nil
}

// containerBinds maps a container's volumeMounts to bind mounts. Mounts of
// unsupported volume types are left out.
func containerBinds(pod *corev1.Pod, c *corev1.Container, podDir string) ([]bindMount, error) {
	var binds []bindMount
	for _, vm := range c.VolumeMounts {
		var vol *corev1.Volume
		for i := range pod.Spec.Volumes {
			if pod.Spec.Volumes[i].Name == vm.Name {
				vol = &pod.Spec.Volumes[i]
				break
			}
		}
		if vol == nil {
			return nil, fmt.Errorf("volumeMount %q refers to no volume", vm.Name)
		}
		var src string
		switch {
		case vol.HostPath != nil:
			src = vol.HostPath.Path
		case vol.EmptyDir != nil:
			src = emptyDirPath(podDir, vol.Name)
		default:
			continue
		}
		if vm.SubPath != "" {
			sub := filepath.Join(src, filepath.Clean("/"+vm.SubPath))
			// kubelet creates a missing subPath as a directory.
			if _, err := os.Stat(sub); errors.Is(err, fs.ErrNotExist) {
				if err := os.MkdirAll(sub, 0o755); err != nil {
					return nil, fmt.Errorf("creating subPath %s: %w", sub, err)
				}
			}
			src = sub
		}
		binds = append(binds, bindMount{Src: src, Dst: vm.MountPath, ReadOnly: vm.ReadOnly})
	}
	return binds, nil
}
