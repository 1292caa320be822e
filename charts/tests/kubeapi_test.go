package charttests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// get GETs an API path with the admin token and decodes a 200 body into `into` (if not nil).
func (c *controlPlane) get(path string, into any) (int, error) {
	req, err := http.NewRequest(http.MethodGet, c.server+path, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode == http.StatusOK && into != nil {
		return resp.StatusCode, json.Unmarshal(body, into)
	}
	return resp.StatusCode, nil
}

// mustGet is get for objects that must exist.
func (c *controlPlane) mustGet(t *testing.T, path string, into any) {
	t.Helper()
	code, err := c.get(path, into)
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET %s: %d %v", path, code, err)
	}
}

// run runs helm or kubectl (a path) against the control plane, with helm's own config and
// cache in the control plane's directory (not the user's). It returns stdout, stderr and the
// exit error.
func (c *controlPlane) run(t *testing.T, bin string, args ...string) (string, string, error) {
	t.Helper()
	home := filepath.Join(c.dir, "helm-home")
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+c.kubeconfig,
		"HELM_CONFIG_HOME="+home+"/config", "HELM_CACHE_HOME="+home+"/cache", "HELM_DATA_HOME="+home+"/data")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

// helm runs helm against the control plane and fails the test if it fails.
func (c *controlPlane) helm(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, err := c.run(t, helmBin(t), args...)
	if err != nil {
		t.Fatalf("helm %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// kubectl runs kubectl (built with the control plane) and returns stdout, stderr, exit error.
func (c *controlPlane) kubectl(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	bin, err := kubeTool("kubectl")
	if err != nil {
		t.Fatal(err)
	}
	return c.run(t, bin, args...)
}

// eventually polls cond (which says what it saw) until it holds or limit passes. The API
// server answers in milliseconds; limits are for a loaded 2-core machine.
func eventually(t *testing.T, what string, limit time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		ok, saw := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v; last seen: %s", what, limit, saw)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Pod Security Standards levels, as namespace labels take them.
const (
	restricted = "restricted"
	baseline   = "baseline"
	privileged = "privileged"
)

// namespace creates a namespace enforcing a Pod Security level and waits for its default
// ServiceAccount (without it the ReplicaSet controller's pod creations fail and back off).
func (c *controlPlane) namespace(t *testing.T, name, level string) {
	t.Helper()
	manifest := fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata:
  name: %s
  labels:
    pod-security.kubernetes.io/enforce: %s
    pod-security.kubernetes.io/warn: %s
`, name, level, level)
	c.apply(t, "", manifest)
	eventually(t, "ServiceAccount "+name+"/default", time.Minute, func() (bool, string) {
		code, err := c.get("/api/v1/namespaces/"+name+"/serviceaccounts/default", nil)
		return code == http.StatusOK, fmt.Sprint(code, err)
	})
}

// apply runs `kubectl apply --server-side` on a manifest.
func (c *controlPlane) apply(t *testing.T, ns, manifest string) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "manifest.yaml")
	if err := os.WriteFile(f, []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"apply", "--server-side", "-f", f}
	if ns != "" {
		args = append(args, "-n", ns)
	}
	if out, errOut, err := c.kubectl(t, args...); err != nil {
		t.Fatalf("kubectl apply: %v\n%s%s", err, out, errOut)
	}
}

// replicaSets lists a namespace's ReplicaSets.
func (c *controlPlane) replicaSets(t *testing.T, ns string) []appsv1.ReplicaSet {
	t.Helper()
	var l appsv1.ReplicaSetList
	c.mustGet(t, "/apis/apps/v1/namespaces/"+ns+"/replicasets", &l)
	return l.Items
}

// pods lists a namespace's Pods.
func (c *controlPlane) pods(t *testing.T, ns string) []corev1.Pod {
	t.Helper()
	var l corev1.PodList
	c.mustGet(t, "/api/v1/namespaces/"+ns+"/pods", &l)
	return l.Items
}

// replicaFailure returns the message of a ReplicaSet's ReplicaFailure condition, or "".
func replicaFailure(rs appsv1.ReplicaSet) string {
	for _, cond := range rs.Status.Conditions {
		if cond.Type == appsv1.ReplicaSetReplicaFailure && cond.Status == corev1.ConditionTrue {
			return cond.Message
		}
	}
	return ""
}
