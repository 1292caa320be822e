package charttests

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// chartDir is the chart under test, relative to this package.
const chartDir = "../ringside"

// release is the release name every case renders with (the golden files depend on it).
const release = "demo"

// A rendered manifest set, decoded strictly into the official Kubernetes types.
type manifests struct {
	configMaps []corev1.ConfigMap
	// dashboards are the ConfigMaps labelled app.kubernetes.io/component: dashboard.
	dashboards  []corev1.ConfigMap
	deployments []appsv1.Deployment
	services    []corev1.Service
	podMonitors []monitoringv1.PodMonitor
}

// tool returns the path of a tool the Makefile builds, from env or the default location.
func tool(t *testing.T, env, def string) string {
	t.Helper()
	p := os.Getenv(env)
	if p == "" {
		p = def
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(abs); err != nil {
		t.Fatalf("%s not found at %s (set %s, or run `make chart-test`, which builds it)", env, abs, env)
	}
	return abs
}

func helmBin(t *testing.T) string { return tool(t, "HELM", "../../target/tools/helm") }

func ringsideBin(t *testing.T) string {
	return tool(t, "RINGSIDE_BIN", "../../target/release/ringside")
}

// helm runs helm and returns stdout, or the combined error text.
func helm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(helmBin(t), args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("helm %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.String(), nil
}

// render renders the chart with one values file (or none) plus extra helm arguments.
func render(t *testing.T, valuesFile string, extra ...string) string {
	t.Helper()
	args := []string{"template", release, chartDir, "--namespace", "default"}
	if valuesFile != "" {
		args = append(args, "-f", valuesFile)
	}
	out, err := helm(t, append(args, extra...)...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// ciCases lists charts/ringside/ci/*-values.yaml by case name (file name less "-values.yaml").
func ciCases(t *testing.T) map[string]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(chartDir, "ci", "*-values.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no values sets in %s/ci: %v", chartDir, err)
	}
	cases := map[string]string{}
	for _, f := range files {
		cases[strings.TrimSuffix(filepath.Base(f), "-values.yaml")] = f
	}
	return cases
}

var (
	renderedMu sync.Mutex
	rendered   = map[string]string{}
)

// renderCase renders one ci values set, once per test binary.
func renderCase(t *testing.T, file string) string {
	t.Helper()
	renderedMu.Lock()
	defer renderedMu.Unlock()
	if out, ok := rendered[file]; ok {
		return out
	}
	out := render(t, file)
	rendered[file] = out
	return out
}

// decodeStrict splits a multi-document stream and decodes each document into its Go type,
// failing on unknown fields, duplicate keys or an unexpected kind.
func decodeStrict(t *testing.T, stream string) manifests {
	t.Helper()
	var m manifests
	for i, doc := range strings.Split(stream, "\n---\n") {
		if strings.TrimSpace(stripComments(doc)) == "" || strings.TrimSpace(doc) == "---" {
			continue
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
			t.Fatalf("document %d: %v\n%s", i, err, doc)
		}
		var err error
		switch tm.APIVersion + "/" + tm.Kind {
		case "v1/ConfigMap":
			var o corev1.ConfigMap
			err = yaml.UnmarshalStrict([]byte(doc), &o)
			if o.Labels["app.kubernetes.io/component"] == "dashboard" {
				m.dashboards = append(m.dashboards, o)
			} else {
				m.configMaps = append(m.configMaps, o)
			}
		case "apps/v1/Deployment":
			var o appsv1.Deployment
			err = yaml.UnmarshalStrict([]byte(doc), &o)
			m.deployments = append(m.deployments, o)
		case "v1/Service":
			var o corev1.Service
			err = yaml.UnmarshalStrict([]byte(doc), &o)
			m.services = append(m.services, o)
		case "monitoring.coreos.com/v1/PodMonitor":
			var o monitoringv1.PodMonitor
			err = yaml.UnmarshalStrict([]byte(doc), &o)
			m.podMonitors = append(m.podMonitors, o)
		default:
			t.Fatalf("document %d: unexpected %s %s", i, tm.APIVersion, tm.Kind)
		}
		if err != nil {
			t.Fatalf("document %d (%s): strict decode: %v\n%s", i, tm.Kind, err, doc)
		}
	}
	return m
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// TestGolden compares `helm template` of every ci values set with golden/<case>.yaml.
// UPDATE_GOLDEN=1 rewrites the golden files instead.
func TestGolden(t *testing.T) {
	cases := ciCases(t)
	names := make([]string, 0, len(cases))
	for name := range cases {
		names = append(names, name)
	}
	sort.Strings(names)
	golden, _ := filepath.Glob("golden/*.yaml")
	for _, g := range golden {
		if _, ok := cases[strings.TrimSuffix(filepath.Base(g), ".yaml")]; !ok && os.Getenv("UPDATE_GOLDEN") == "" {
			t.Errorf("%s has no values set in %s/ci (delete it, or run with UPDATE_GOLDEN=1)", g, chartDir)
		}
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			got := renderCase(t, cases[name])
			path := filepath.Join("golden", name+".yaml")
			if os.Getenv("UPDATE_GOLDEN") != "" {
				if err := os.MkdirAll("golden", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run `UPDATE_GOLDEN=1 make chart-test` to create it)", err)
			}
			if string(want) != got {
				t.Errorf("rendered %s differs from %s (if the change is intended: UPDATE_GOLDEN=1 make chart-test):\n%s",
					cases[name], path, unifiedDiff(t, path, got))
			}
		})
	}
	if os.Getenv("UPDATE_GOLDEN") != "" {
		for _, g := range golden {
			if _, ok := cases[strings.TrimSuffix(filepath.Base(g), ".yaml")]; !ok {
				_ = os.Remove(g)
			}
		}
	}
}

// unifiedDiff returns `diff -u golden rendered`.
func unifiedDiff(t *testing.T, goldenPath, got string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "rendered.yaml")
	if err := os.WriteFile(f, []byte(got), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _ := exec.Command("diff", "-u", goldenPath, f).CombinedOutput()
	return string(out)
}
