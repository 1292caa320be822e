package charttests

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// exampleDeployment is the example's Deployment name for release "demo" with default values.
const exampleDeployment = "demo-ringside-example"

// TestKubeInterceptionPodSecurity: the interception init container (uid 0, NET_ADMIN and
// NET_RAW) is refused by Pod Security admission under restricted and baseline (neither allows
// adding NET_ADMIN or NET_RAW) and accepted under privileged. The Deployment itself is
// accepted everywhere with a warning; the ReplicaSet's pod creations are what is refused.
func TestKubeInterceptionPodSecurity(t *testing.T) {
	t.Parallel()
	c := cluster(t)
	file := ciCases(t)["interception-on"]
	for _, level := range []string{restricted, baseline, privileged} {
		t.Run(level, func(t *testing.T) {
			t.Parallel()
			ns := "intercept-" + level
			c.namespace(t, ns, level)
			in := newInstall(t, c, ns, release, chartDir, "-f", file)
			warn := in.dryRun(t)
			in.installChart(t)
			if level == privileged {
				if strings.Contains(warn, "Warning") {
					t.Errorf("dry-run warned under privileged:\n%s", warn)
				}
				pods := in.templatePods(t, exampleDeployment, 1)
				if pods[0].Spec.InitContainers[0].Name != "ringside-init" {
					t.Errorf("first init container %s, want ringside-init", pods[0].Spec.InitContainers[0].Name)
				}
			} else {
				want := fmt.Sprintf(`violate PodSecurity "%s:latest"`, level)
				if !strings.Contains(warn, want) || !strings.Contains(warn, `"ringside-init"`) || !strings.Contains(warn, "NET_ADMIN") {
					t.Errorf("dry-run did not warn that ringside-init's NET_ADMIN would %s:\n%s", want, warn)
				}
				var msg string
				eventually(t, "the ReplicaSet's pod creation refused", 2*time.Minute, func() (bool, string) {
					for _, rs := range c.replicaSets(t, ns) {
						msg = replicaFailure(rs)
					}
					return strings.Contains(msg, "violates PodSecurity"), msg
				})
				t.Logf("%s refuses the pod: %s", level, msg)
				if !strings.Contains(msg, `"ringside-init"`) || strings.Contains(msg, `"ringside"`) {
					t.Errorf("refusal should name ringside-init (and not the sidecar): %s", msg)
				}
				if n := len(c.pods(t, ns)); n != 0 {
					t.Errorf("%d Pods created under %s", n, level)
				}
			}
			in.uninstall(t)
		})
	}
}

// revision is a ReplicaSet's Deployment revision annotation.
func revision(rs appsv1.ReplicaSet) string {
	return rs.Annotations["deployment.kubernetes.io/revision"]
}

// ringsideOf returns the ringside container of a ReplicaSet's pod template.
func ringsideOf(t *testing.T, rs appsv1.ReplicaSet) corev1.Container {
	c, _ := findRingside(t, rs.Spec.Template.Spec)
	return c
}

// rsByRevision waits for the ReplicaSet with a Deployment revision and returns it.
func rsByRevision(t *testing.T, c *controlPlane, ns, rev string) appsv1.ReplicaSet {
	t.Helper()
	var found appsv1.ReplicaSet
	eventually(t, "ReplicaSet revision "+rev, time.Minute, func() (bool, string) {
		var seen []string
		for _, rs := range c.replicaSets(t, ns) {
			seen = append(seen, rs.Name+"="+revision(rs))
			if revision(rs) == rev {
				found = rs
				return true, ""
			}
		}
		return false, strings.Join(seen, " ")
	})
	return found
}

func configData(t *testing.T, c *controlPlane, ns string) string {
	t.Helper()
	var cm corev1.ConfigMap
	c.mustGet(t, "/api/v1/namespaces/"+ns+"/configmaps/demo-ringside-config", &cm)
	return cm.Data["ringside.yaml"]
}

// TestKubeUpgradeRollback: a routes-only upgrade changes the ConfigMap and not the pod
// template (no new ReplicaSet, same Pods: Ringside reloads the config live); an image or a
// runtime change rolls (a new ReplicaSet revision); a rollback restores both; `kubectl diff`
// is clean after each step.
func TestKubeUpgradeRollback(t *testing.T) {
	t.Parallel()
	c := cluster(t)
	const ns = "upgrade"
	c.namespace(t, ns, restricted)
	in := newInstall(t, c, ns, release, chartDir)
	in.installChart(t)
	pods := in.templatePods(t, exampleDeployment, 1)
	rs1 := rsByRevision(t, c, ns, "1")
	cm1 := configData(t, c, ns)
	var dep appsv1.Deployment
	depPath := "/apis/apps/v1/namespaces/" + ns + "/deployments/" + exampleDeployment
	c.mustGet(t, depPath, &dep)
	gen1 := dep.Generation
	in.diff(t)

	// upgrade renders the new values, checks what `kubectl diff` says would change, upgrades,
	// and checks the result.
	upgrade := func(wantChanged []string, values ...string) {
		t.Helper()
		in.render(t, values...)
		if got := in.diffNames(t); !slices.Equal(got, wantChanged) {
			t.Errorf("kubectl diff before upgrading to %v reports %v, want %v", values, got, wantChanged)
		}
		in.helm(t, "upgrade", append([]string{chartDir, "-n", ns, "--wait=false"}, values...)...)
		in.checkStored(t)
		in.diff(t)
	}

	// Routes only: new config, same pod template.
	routes := []string{"-f", "testdata/upgrade/routes-only-values.yaml"}
	cmFile, depFile := "v1.ConfigMap."+ns+".demo-ringside-config", "apps.v1.Deployment."+ns+"."+exampleDeployment
	upgrade([]string{cmFile}, routes...)
	cm2 := configData(t, c, ns)
	if cm2 == cm1 || !strings.Contains(cm2, "/api/v2") {
		t.Fatalf("the routes upgrade did not reach the ConfigMap:\n%s", cm2)
	}
	c.mustGet(t, depPath, &dep)
	if dep.Generation != gen1 {
		t.Errorf("a routes-only upgrade changed the Deployment (generation %d -> %d): it would roll the pods", gen1, dep.Generation)
	}
	rss := c.replicaSets(t, ns)
	if len(rss) != 1 || rss[0].Name != rs1.Name || revision(rss[0]) != "1" {
		t.Errorf("ReplicaSets after a routes-only upgrade: %v, want only %s at revision 1", names(rss), rs1.Name)
	}
	if now := c.pods(t, ns); len(now) != 1 || now[0].UID != pods[0].UID {
		t.Errorf("the Pod was replaced by a routes-only upgrade")
	}

	// An image change rolls.
	upgrade([]string{depFile}, append(routes, "--set", "image.tag=0.1.1")...)
	rs2 := rsByRevision(t, c, ns, "2")
	if img := ringsideOf(t, rs2).Image; img != "ringside/ringside:0.1.1" {
		t.Errorf("revision 2 runs %s, want ringside/ringside:0.1.1", img)
	}
	// maxSurge (25% of 1, rounded up) lets the new ReplicaSet create its Pod at once.
	eventually(t, "a Pod of revision 2", time.Minute, func() (bool, string) {
		var seen []string
		for _, p := range c.pods(t, ns) {
			if p.Labels["pod-template-hash"] == rs2.Labels["pod-template-hash"] {
				return true, ""
			}
			seen = append(seen, p.Name)
		}
		return false, strings.Join(seen, " ")
	})
	// So does a runtime change.
	upgrade([]string{depFile}, append(routes, "--set", "image.tag=0.1.1", "--set", "runtime=epoll")...)
	if args := ringsideOf(t, rsByRevision(t, c, ns, "3")).Args; arg(args, "--runtime") != "epoll" {
		t.Errorf("revision 3 runs %v, want --runtime epoll", args)
	}

	// Back to the first release: its config, and its ReplicaSet as revision 4.
	in.render(t)
	if got := in.diffNames(t); !slices.Equal(got, []string{depFile, cmFile}) {
		t.Errorf("kubectl diff against the first release's manifests reports %v, want the ConfigMap and the Deployment", got)
	}
	in.helm(t, "rollback", "1", "-n", ns)
	if cm := configData(t, c, ns); cm != cm1 {
		t.Errorf("rollback left the config at:\n%s", cm)
	}
	if rs := rsByRevision(t, c, ns, "4"); rs.Name != rs1.Name {
		t.Errorf("rollback made %s revision 4, want the first ReplicaSet %s", rs.Name, rs1.Name)
	}
	in.checkStored(t)
	in.diff(t)
	in.uninstall(t)
}

func names(rss []appsv1.ReplicaSet) []string {
	var n []string
	for _, rs := range rss {
		n = append(n, rs.Name+"@"+revision(rs))
	}
	return n
}

// TestKubeInvalidValues: values the chart refuses never reach the server: helm fails with the
// chart's message, and the namespace holds no release record and no object.
func TestKubeInvalidValues(t *testing.T) {
	t.Parallel()
	c := cluster(t)
	const ns = "invalid"
	c.namespace(t, ns, restricted)
	for _, v := range invalidValues {
		args := append([]string{"install"}, invalidArgs(v.release, v.set)...)
		_, errOut, err := c.run(t, helmBin(t), append(args, "-n", ns, "--wait=false")...)
		if err == nil {
			t.Fatalf("helm install --set %s succeeded", v.set)
		}
		if !strings.Contains(errOut, v.want) {
			t.Errorf("helm install --set %s: error does not mention %q:\n%s", v.set, v.want, errOut)
		}
	}
	var secrets corev1.SecretList
	c.mustGet(t, "/api/v1/namespaces/"+ns+"/secrets", &secrets)
	var cms corev1.ConfigMapList
	c.mustGet(t, "/api/v1/namespaces/"+ns+"/configmaps", &cms)
	var cmNames []string
	for _, cm := range cms.Items {
		if cm.Name != "kube-root-ca.crt" { // published by the controller-manager
			cmNames = append(cmNames, cm.Name)
		}
	}
	if len(secrets.Items) != 0 || len(cmNames) != 0 {
		t.Errorf("refused installs left %d Secrets (release records) and ConfigMaps %v", len(secrets.Items), cmNames)
	}
	for _, kind := range []string{"/apis/apps/v1/namespaces/" + ns + "/deployments", "/api/v1/namespaces/" + ns + "/services"} {
		var l struct{ Items []any }
		c.mustGet(t, kind, &l)
		if len(l.Items) != 0 {
			t.Errorf("refused installs left %d objects at %s", len(l.Items), kind)
		}
	}
}
