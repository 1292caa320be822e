package charttests

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// The PodMonitor CRD comes from the prometheus-operator module (its example/ directory),
// fetched through the Go module proxy like every other tool here.
const promOperatorModule = "github.com/prometheus-operator/prometheus-operator@v0.85.0"

// install is one chart installed into one namespace.
type install struct {
	c        *controlPlane
	ns       string
	release  string
	chart    string   // a chart directory
	values   []string // helm arguments: -f FILE, --set K=V
	rendered string   // `helm template` with the same arguments
	file     string   // rendered, written out for kubectl
}

func newInstall(t *testing.T, c *controlPlane, ns, release, chart string, values ...string) *install {
	t.Helper()
	in := &install{c: c, ns: ns, release: release, chart: chart, values: values}
	in.render(t, values...)
	return in
}

// render renders the chart with values into in.rendered and in.file.
func (in *install) render(t *testing.T, values ...string) {
	t.Helper()
	out, err := helm(t, append([]string{"template", in.release, in.chart, "--namespace", in.ns}, values...)...)
	if err != nil {
		t.Fatal(err)
	}
	in.values, in.rendered = values, out
	in.file = filepath.Join(t.TempDir(), "rendered.yaml")
	if err := os.WriteFile(in.file, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
}

// dryRun runs `kubectl apply --dry-run=server` on the rendered manifests and returns what the
// server warned about (PodSecurity warns on Deployments whose pods it would refuse).
func (in *install) dryRun(t *testing.T) string {
	t.Helper()
	out, errOut, err := in.c.kubectl(t, "apply", "--dry-run=server", "-n", in.ns, "-f", in.file)
	if err != nil {
		t.Fatalf("kubectl apply --dry-run=server refused the rendered manifests: %v\n%s%s", err, out, errOut)
	}
	return errOut
}

func (in *install) helm(t *testing.T, verb string, extra ...string) {
	t.Helper()
	args := append([]string{verb, in.release}, extra...)
	in.c.helm(t, args...)
}

func (in *install) installChart(t *testing.T) {
	t.Helper()
	in.helm(t, "install", append([]string{in.chart, "-n", in.ns, "--wait=false"}, in.values...)...)
}

// live returns the live objects named by the rendered manifests, keyed "Kind/name".
func (in *install) live(t *testing.T) map[string]object {
	t.Helper()
	out, errOut, err := in.c.kubectl(t, "get", "-n", in.ns, "-f", in.file, "-o", "json")
	if err != nil {
		t.Fatalf("kubectl get -f rendered: %v\n%s", err, errOut)
	}
	var list struct {
		Kind  string            `json:"kind"`
		Items []json.RawMessage `json:"items"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatal(err)
	}
	if list.Kind != "List" {
		list.Items = []json.RawMessage{json.RawMessage(out)}
	}
	objs := map[string]object{}
	for _, raw := range list.Items {
		var o object
		if err := json.Unmarshal(raw, &o); err != nil {
			t.Fatal(err)
		}
		objs[key(o)] = o
	}
	return objs
}

func key(o object) string {
	md, _ := o["metadata"].(map[string]any)
	return fmt.Sprintf("%s/%s", o["kind"], md["name"])
}

// checkStored: every rendered object exists on the server and holds every rendered field.
// The server silently drops fields it does not know or whose feature gate is off, which
// strict decoding on the client cannot see.
func (in *install) checkStored(t *testing.T) {
	t.Helper()
	live := in.live(t)
	for _, r := range splitDocs(t, in.rendered) {
		l, ok := live[key(r)]
		if !ok {
			t.Errorf("%s rendered, not on the server", key(r))
			continue
		}
		for _, d := range subset(r, l, key(r)) {
			t.Errorf("stored differently: %s", d)
		}
	}
}

// diff runs `kubectl diff` of the rendered manifests against the live objects; it must be
// empty (exit 0): what Helm applied is what the chart renders, after the server's defaults.
func (in *install) diff(t *testing.T) {
	t.Helper()
	out, errOut, err := in.c.kubectl(t, "diff", "-n", in.ns, "-f", in.file)
	if err != nil {
		t.Errorf("kubectl diff after helm %v is not clean: %v\n%s%s", in.values, err, out, errOut)
	}
}

// generations returns metadata.generation of each live object that has one, by "Kind/name".
func (in *install) generations(t *testing.T) map[string]any {
	t.Helper()
	gens := map[string]any{}
	for k, o := range in.live(t) {
		if g, ok := o["metadata"].(map[string]any)["generation"]; ok {
			gens[k] = g
		}
	}
	return gens
}

// noopUpgradeAndRollback upgrades with the same values, then rolls back to revision 1: neither
// may change a spec (a template that renders differently each time, e.g. with `now` or
// `randAlphaNum`, would roll the pods on every upgrade).
func (in *install) noopUpgradeAndRollback(t *testing.T) {
	t.Helper()
	before := in.generations(t)
	in.helm(t, "upgrade", append([]string{in.chart, "-n", in.ns, "--wait=false"}, in.values...)...)
	in.helm(t, "rollback", "1", "-n", in.ns)
	if after := in.generations(t); !reflect.DeepEqual(before, after) {
		t.Errorf("an upgrade with the same values and a rollback changed generations %v -> %v", before, after)
	}
	in.checkStored(t)
	in.diff(t)
}

// diffNames runs `kubectl diff` of the rendered manifests (before they are applied) and
// returns the objects it reports changed, sorted, as kubectl names its files
// (GROUP.VERSION.KIND.NAMESPACE.NAME).
func (in *install) diffNames(t *testing.T) []string {
	t.Helper()
	out, errOut, err := in.c.kubectl(t, "diff", "-n", in.ns, "-f", in.file)
	if ee, ok := err.(*exec.ExitError); err != nil && (!ok || ee.ExitCode() != 1) {
		t.Fatalf("kubectl diff: %v\n%s", err, errOut)
	}
	var changed []string
	for _, l := range strings.Split(out, "\n") {
		// diff -u -N /tmp/LIVE-1/apps.v1.Deployment.NS.NAME /tmp/MERGED-2/apps.v1.Deployment.NS.NAME
		if f := strings.Fields(l); len(f) == 5 && f[0] == "diff" {
			changed = append(changed, filepath.Base(f[4]))
		}
	}
	slices.Sort(changed)
	return changed
}

// templatePods waits for `want` Pods created by the controller-manager and checks each
// carries the rendered pod template (containers, init containers, volumes, labels).
func (in *install) templatePods(t *testing.T, deployment string, want int) []corev1.Pod {
	t.Helper()
	var tmpl object
	for _, r := range splitDocs(t, in.rendered) {
		if key(r) == "Deployment/"+deployment {
			tmpl = r["spec"].(map[string]any)["template"].(map[string]any)
		}
	}
	if tmpl == nil {
		t.Fatalf("no Deployment %s rendered", deployment)
	}
	var pods []corev1.Pod
	eventually(t, fmt.Sprintf("%d Pods of %s/%s", want, in.ns, deployment), 2*time.Minute, func() (bool, string) {
		pods = in.c.pods(t, in.ns)
		var msgs []string
		for _, rs := range in.c.replicaSets(t, in.ns) {
			msgs = append(msgs, rs.Name+": "+replicaFailure(rs))
		}
		return len(pods) == want, fmt.Sprintf("%d Pods; ReplicaSets %v", len(pods), msgs)
	})
	for _, p := range pods {
		for _, d := range subset(tmpl, toObject(t, p), "Pod/"+p.Name) {
			t.Errorf("Pod differs from the rendered template: %s", d)
		}
	}
	return pods
}

// uninstall runs `helm uninstall` and waits until the rendered objects and their Pods are
// gone (the garbage collector deletes ReplicaSets and Pods after their Deployment).
func (in *install) uninstall(t *testing.T) {
	t.Helper()
	in.helm(t, "uninstall", "-n", in.ns)
	eventually(t, "objects of "+in.ns+" deleted", 2*time.Minute, func() (bool, string) {
		out, _, _ := in.c.kubectl(t, "get", "-n", in.ns, "-f", in.file, "--ignore-not-found", "-o", "name")
		pods, rss := in.c.pods(t, in.ns), in.c.replicaSets(t, in.ns)
		return strings.TrimSpace(out) == "" && len(pods) == 0 && len(rss) == 0,
			fmt.Sprintf("%q, %d Pods, %d ReplicaSets", out, len(pods), len(rss))
	})
}

// applyPodMonitorCRD installs the PodMonitor CRD and waits until it is served.
func applyPodMonitorCRD(t *testing.T, c *controlPlane) {
	t.Helper()
	cmd := exec.Command("go", "mod", "download", "-json", promOperatorModule)
	cmd.Dir = os.TempDir()
	out, err := cmd.Output()
	var mod struct{ Dir, Error string }
	if err != nil || json.Unmarshal(out, &mod) != nil || mod.Dir == "" {
		t.Fatalf("go mod download %s: %v %s %s", promOperatorModule, err, out, mod.Error)
	}
	crd, err := os.ReadFile(filepath.Join(mod.Dir, "example", "prometheus-operator-crd", "monitoring.coreos.com_podmonitors.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	c.apply(t, "", string(crd))
	if out, errOut, err := c.kubectl(t, "wait", "--for=condition=Established", "--timeout=60s", "crd/podmonitors.monitoring.coreos.com"); err != nil {
		t.Fatalf("PodMonitor CRD: %v\n%s%s", err, out, errOut)
	}
}

// TestKubeInstall installs every ci values set and the user-chart example into the control
// plane and checks what the server made of them.
func TestKubeInstall(t *testing.T) {
	t.Parallel()
	c := cluster(t)
	applyPodMonitorCRD(t, c)
	for name, file := range ciCases(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			w, ok := wants[name]
			if !ok {
				t.Fatalf("%s has no entry in wants (semantics_test.go)", file)
			}
			level := restricted
			if w.interception {
				level = privileged // NET_ADMIN and NET_RAW: see TestKubeInterceptionPodSecurity
			}
			ns := "ci-" + name
			c.namespace(t, ns, level)
			in := newInstall(t, c, ns, release, chartDir, "-f", file)
			if warn := in.dryRun(t); strings.Contains(warn, "Warning") {
				t.Errorf("server-side dry-run in a %s namespace warned:\n%s", level, warn)
			}
			in.installChart(t)
			in.checkStored(t)
			if w.example {
				m := decodeStrict(t, in.rendered)
				pods := in.templatePods(t, m.deployments[0].Name, int(*m.deployments[0].Spec.Replicas))
				rs, inInit := findRingside(t, pods[0].Spec)
				if inInit != w.native || (w.native && (rs.RestartPolicy == nil || *rs.RestartPolicy != corev1.ContainerRestartPolicyAlways)) {
					t.Errorf("Pod's ringside: init container %v, restartPolicy %v; want native %v", inInit, rs.RestartPolicy, w.native)
				}
			}
			in.diff(t)
			in.noopUpgradeAndRollback(t)
			in.uninstall(t)
		})
	}
	// Helm allows dots in release names; the names the chart derives from it must still be
	// valid (a Service name is a DNS-1035 label: no dots).
	t.Run("dotted-release-name", func(t *testing.T) {
		t.Parallel()
		c.namespace(t, "dotted", restricted)
		in := newInstall(t, c, "dotted", "shop.v2", chartDir)
		if warn := in.dryRun(t); strings.Contains(warn, "Warning") {
			t.Errorf("server-side dry-run warned:\n%s", warn)
		}
		in.installChart(t)
		in.checkStored(t)
		in.templatePods(t, "shop-v2-ringside-example", 1)
		in.diff(t)
		in.noopUpgradeAndRollback(t)
		in.uninstall(t)
	})
	t.Run("mychart", func(t *testing.T) {
		t.Parallel()
		dir := filepath.Join(t.TempDir(), "mychart")
		if err := os.CopyFS(dir, os.DirFS("testdata/mychart")); err != nil {
			t.Fatal(err)
		}
		if err := os.CopyFS(filepath.Join(dir, "charts", "ringside"), os.DirFS(chartDir)); err != nil {
			t.Fatal(err)
		}
		// The example's own container "api" sets no securityContext, so the namespace is
		// baseline; the sidecar alone passes restricted (the ci cases above).
		c.namespace(t, "mychart", baseline)
		in := newInstall(t, c, "mychart", "shop", dir)
		if warn := in.dryRun(t); strings.Contains(warn, "Warning") {
			t.Errorf("server-side dry-run warned:\n%s", warn)
		}
		in.installChart(t)
		in.checkStored(t)
		pods := in.templatePods(t, "shop-api", 2)
		if _, inInit := findRingside(t, pods[0].Spec); !inInit {
			t.Error("the user's Pod has no native ringside sidecar")
		}
		in.diff(t)
		in.noopUpgradeAndRollback(t)
		in.uninstall(t)
	})
}
