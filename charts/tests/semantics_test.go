package charttests

import (
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// want is what each ci values set must produce. Every file in charts/ringside/ci needs an
// entry, so a new values set cannot go unchecked.
type want struct {
	native       bool
	runtime      string
	seccomp      corev1.SeccompProfileType
	localhost    string // localhostProfile, for Localhost
	example      bool
	podMonitor   bool
	dashboard    bool
	annotations  bool
	interception bool
}

var wants = map[string]want{
	"default":                    {native: true, runtime: "auto", seccomp: "RuntimeDefault", example: true, annotations: true},
	"classic-sidecar":            {native: false, runtime: "epoll", seccomp: "RuntimeDefault", example: true, annotations: true},
	"io-uring-localhost-seccomp": {native: true, runtime: "io-uring", seccomp: "Localhost", localhost: "profiles/ringside-io-uring.json", example: true, annotations: true},
	"podmonitor-on":              {native: true, runtime: "auto", seccomp: "RuntimeDefault", example: true, podMonitor: true},
	"example-off":                {native: true, runtime: "auto", seccomp: "RuntimeDefault"},
	"interception-on":            {native: true, runtime: "auto", seccomp: "RuntimeDefault", example: true, annotations: true, interception: true},
	"routes":                     {native: true, runtime: "auto", seccomp: "RuntimeDefault", example: true, annotations: true},
	"resilience":                 {native: true, runtime: "auto", seccomp: "RuntimeDefault", example: true, annotations: true},
	"tls-secret":                 {native: true, runtime: "auto", seccomp: "RuntimeDefault", example: true, annotations: true},
	"tls-csi":                    {native: true, runtime: "auto", seccomp: "RuntimeDefault", example: true, annotations: true},
	"tls-spire":                  {native: true, runtime: "auto", seccomp: "RuntimeDefault", example: true, annotations: true},
	"split-dashboard":            {native: true, runtime: "split", seccomp: "Localhost", localhost: "profiles/ringside-io-uring.json", example: true, podMonitor: true, dashboard: true},
}

// ringsideConfig is the part of ringside.yaml the chart must keep consistent with the pod.
type ringsideConfig struct {
	Admin struct {
		Address string `json:"address"`
	} `json:"admin"`
	Listeners []struct {
		Name    string `json:"name"`
		Address string `json:"address"`
	} `json:"listeners"`
}

func port(t *testing.T, addr string) int32 {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	return int32(n)
}

func TestManifests(t *testing.T) {
	for name, file := range ciCases(t) {
		t.Run(name, func(t *testing.T) {
			w, ok := wants[name]
			if !ok {
				t.Fatalf("%s has no entry in wants (semantics_test.go)", file)
			}
			m := decodeStrict(t, renderCase(t, file))
			checkManifests(t, m, w)
		})
	}
}

func checkManifests(t *testing.T, m manifests, w want) {
	if len(m.configMaps) != 1 {
		t.Fatalf("want 1 ConfigMap, got %d", len(m.configMaps))
	}
	cm := m.configMaps[0]
	for k := range cm.Annotations {
		if strings.Contains(k, "checksum") {
			t.Errorf("ConfigMap has annotation %s: config changes reload live, they must not roll pods", k)
		}
	}
	var cfg ringsideConfig
	if err := yaml.Unmarshal([]byte(cm.Data["ringside.yaml"]), &cfg); err != nil {
		t.Fatalf("ringside.yaml in the ConfigMap: %v", err)
	}
	if host, _, _ := net.SplitHostPort(cfg.Admin.Address); host != "0.0.0.0" {
		t.Errorf("admin address %q: the kubelet probes the pod IP, so it must listen on 0.0.0.0", cfg.Admin.Address)
	}
	admin := port(t, cfg.Admin.Address)
	if len(cfg.Listeners) == 0 {
		t.Fatal("config has no listener")
	}
	inbound := port(t, cfg.Listeners[0].Address)

	if !w.example {
		if len(m.deployments)+len(m.services) != 0 {
			t.Errorf("example disabled, yet %d Deployments and %d Services", len(m.deployments), len(m.services))
		}
	} else {
		if len(m.deployments) != 1 || len(m.services) != 1 {
			t.Fatalf("want the example Deployment and Service, got %d and %d", len(m.deployments), len(m.services))
		}
		d := m.deployments[0]
		checkPod(t, d.Spec.Template, cm.Name, admin, inbound, w)
		sel := d.Spec.Selector.MatchLabels
		for k, v := range sel {
			if d.Spec.Template.Labels[k] != v {
				t.Errorf("Deployment selector %s=%s does not match its pod labels", k, v)
			}
		}
		svc := m.services[0]
		for k, v := range svc.Spec.Selector {
			if d.Spec.Template.Labels[k] != v {
				t.Errorf("Service selector %s=%s does not match the pod labels", k, v)
			}
		}
		tp := svc.Spec.Ports[0].TargetPort.String()
		rs, _ := findRingside(t, d.Spec.Template.Spec)
		if p := namedPort(rs, tp); p != inbound {
			t.Errorf("Service targets %q = port %d, the inbound listener is on %d", tp, p, inbound)
		}
	}

	checkDashboard(t, m, w)
	if w.podMonitor != (len(m.podMonitors) == 1) {
		t.Fatalf("PodMonitor wanted: %v, rendered: %d", w.podMonitor, len(m.podMonitors))
	}
	if w.podMonitor {
		pm := m.podMonitors[0]
		if len(pm.Spec.PodMetricsEndpoints) != 1 {
			t.Fatalf("want 1 podMetricsEndpoint, got %d", len(pm.Spec.PodMetricsEndpoints))
		}
		ep := pm.Spec.PodMetricsEndpoints[0]
		if ep.Port == nil || *ep.Port != "ringside-admin" || ep.Path != "/metrics" {
			t.Errorf("PodMonitor endpoint port %v path %q, want ringside-admin /metrics", ep.Port, ep.Path)
		}
		if len(m.deployments) == 1 {
			labels := m.deployments[0].Spec.Template.Labels
			for k, v := range pm.Spec.Selector.MatchLabels {
				if labels[k] != v {
					t.Errorf("PodMonitor selects %s=%s, which the example pod lacks", k, v)
				}
			}
		}
	}
}

// findRingside returns the ringside container and whether it is an init container.
func findRingside(t *testing.T, spec corev1.PodSpec) (corev1.Container, bool) {
	t.Helper()
	var found []corev1.Container
	var inInit bool
	for _, c := range spec.InitContainers {
		if c.Name == "ringside" {
			found, inInit = append(found, c), true
		}
	}
	for _, c := range spec.Containers {
		if c.Name == "ringside" {
			found = append(found, c)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want exactly one ringside container, found %d", len(found))
	}
	return found[0], inInit
}

func namedPort(c corev1.Container, name string) int32 {
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	return 0
}

// arg returns the value after flag in args, or "".
func arg(args []string, flag string) string {
	i := slices.Index(args, flag)
	if i < 0 || i+1 >= len(args) {
		return ""
	}
	return args[i+1]
}

// checkPod checks a pod template that carries the sidecar.
func checkPod(t *testing.T, pt corev1.PodTemplateSpec, configMap string, admin, inbound int32, w want) {
	t.Helper()
	spec := pt.Spec
	rs, inInit := findRingside(t, spec)
	if inInit != w.native {
		t.Errorf("ringside in initContainers: %v, want %v (nativeSidecar)", inInit, w.native)
	}
	if w.native {
		if rs.RestartPolicy == nil || *rs.RestartPolicy != corev1.ContainerRestartPolicyAlways {
			t.Errorf("a native sidecar needs restartPolicy: Always, got %v", rs.RestartPolicy)
		}
	} else if rs.RestartPolicy != nil {
		t.Errorf("a classic sidecar must not set restartPolicy, got %v", *rs.RestartPolicy)
	}

	// Command line.
	if len(rs.Command) != 0 {
		t.Errorf("command %v overrides the image's ENTRYPOINT", rs.Command)
	}
	if len(rs.Args) < 3 || rs.Args[0] != "run" || arg(rs.Args, "-c") != "/etc/ringside/ringside.yaml" {
		t.Errorf("args %v, want run -c /etc/ringside/ringside.yaml ...", rs.Args)
	}
	if got := arg(rs.Args, "--runtime"); got != w.runtime {
		t.Errorf("--runtime %q, want %q", got, w.runtime)
	}
	drain, err := time.ParseDuration(arg(rs.Args, "--drain-timeout"))
	if err != nil {
		t.Fatalf("--drain-timeout: %v", err)
	}

	// Shutdown arithmetic: grace > preStop sleep + drain.
	var sleep time.Duration
	if rs.Lifecycle != nil && rs.Lifecycle.PreStop != nil {
		if rs.Lifecycle.PreStop.Sleep == nil {
			t.Fatalf("preStop is not a sleep action: %+v", rs.Lifecycle.PreStop)
		}
		sleep = time.Duration(rs.Lifecycle.PreStop.Sleep.Seconds) * time.Second
	}
	if spec.TerminationGracePeriodSeconds == nil {
		t.Fatal("terminationGracePeriodSeconds unset")
	}
	grace := time.Duration(*spec.TerminationGracePeriodSeconds) * time.Second
	if grace <= drain+sleep {
		t.Errorf("terminationGracePeriodSeconds %v must exceed preStop sleep %v + drain %v", grace, sleep, drain)
	}

	// Config volume: the whole ConfigMap as a directory, never subPath (kubelet does not
	// update subPath mounts, and Ringside watches the directory).
	var mounted bool
	for _, vm := range rs.VolumeMounts {
		if vm.Name == "ringside-config" {
			mounted = true
			if vm.MountPath != "/etc/ringside" || vm.SubPath != "" || vm.SubPathExpr != "" || !vm.ReadOnly {
				t.Errorf("config mount %+v: want /etc/ringside, read-only, no subPath", vm)
			}
		}
	}
	if !mounted {
		t.Error("ringside-config is not mounted")
	}
	var vol *corev1.Volume
	for i := range spec.Volumes {
		if spec.Volumes[i].Name == "ringside-config" {
			vol = &spec.Volumes[i]
		}
	}
	if vol == nil || vol.ConfigMap == nil || vol.ConfigMap.Name != configMap || len(vol.ConfigMap.Items) != 0 {
		t.Errorf("volume ringside-config: %+v, want the whole ConfigMap %s", vol, configMap)
	}

	// Ports and probes on the admin port.
	if p := namedPort(rs, "ringside-admin"); p != admin {
		t.Errorf("port ringside-admin = %d, config's admin port is %d", p, admin)
	}
	if p := namedPort(rs, "ringside-in"); p != inbound {
		t.Errorf("port ringside-in = %d, config's inbound listener is on %d", p, inbound)
	}
	for _, pr := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{{"startup", rs.StartupProbe, "/ready"}, {"readiness", rs.ReadinessProbe, "/ready"}, {"liveness", rs.LivenessProbe, "/live"}} {
		if pr.probe == nil || pr.probe.HTTPGet == nil {
			t.Errorf("%s probe: want an httpGet", pr.name)
			continue
		}
		g := pr.probe.HTTPGet
		if g.Path != pr.path || g.Port.IntValue() != int(admin) {
			t.Errorf("%s probe GET %s port %s, want %s on the admin port %d", pr.name, g.Path, g.Port.String(), pr.path, admin)
		}
	}

	// Security.
	checkSecurity(t, "ringside", rs.SecurityContext, w)
	sc := rs.SecurityContext
	if sc.Capabilities != nil && len(sc.Capabilities.Add) != 0 {
		t.Errorf("ringside adds capabilities %v", sc.Capabilities.Add)
	}
	if sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser == 0 {
		t.Errorf("ringside must run as a non-root uid: %+v", sc)
	}

	// Annotations: scrape config, and no checksum that would roll pods on config changes.
	for k := range pt.Annotations {
		if strings.Contains(k, "checksum") {
			t.Errorf("pod annotation %s rolls pods on config changes; Ringside reloads live", k)
		}
	}
	if w.annotations {
		a := pt.Annotations
		if a["prometheus.io/scrape"] != "true" || a["prometheus.io/path"] != "/metrics" || a["prometheus.io/port"] != strconv.Itoa(int(admin)) {
			t.Errorf("scrape annotations %v, want scrape true, /metrics, port %d", a, admin)
		}
	} else if _, ok := pt.Annotations["prometheus.io/scrape"]; ok {
		t.Error("scrape annotations rendered although metrics.annotations is false")
	}

	// Interception: `ringside iptables` before the sidecar, root with NET_ADMIN/NET_RAW only.
	var initC *corev1.Container
	for i := range spec.InitContainers {
		if spec.InitContainers[i].Name == "ringside-init" {
			initC = &spec.InitContainers[i]
			if w.native && i != 0 {
				t.Errorf("ringside-init is init container %d; it must run before the sidecar", i)
			}
		}
	}
	if w.interception != (initC != nil) {
		t.Fatalf("interception init container wanted %v, present %v", w.interception, initC != nil)
	}
	if initC != nil {
		a := initC.Args
		if len(a) == 0 || a[0] != "iptables" {
			t.Errorf("ringside-init args %v, want iptables ...", a)
		}
		if arg(a, "--proxy-uid") != strconv.FormatInt(*sc.RunAsUser, 10) {
			t.Errorf("--proxy-uid %s, ringside runs as %d", arg(a, "--proxy-uid"), *sc.RunAsUser)
		}
		if arg(a, "--inbound-port") != strconv.Itoa(int(inbound)) {
			t.Errorf("--inbound-port %s, want %d", arg(a, "--inbound-port"), inbound)
		}
		if !slices.Contains(strings.Split(arg(a, "--skip-inbound-ports"), ","), strconv.Itoa(int(admin))) {
			t.Errorf("--skip-inbound-ports %q must include the admin port %d", arg(a, "--skip-inbound-ports"), admin)
		}
		isc := initC.SecurityContext
		if isc == nil || isc.Capabilities == nil || !slices.Equal(isc.Capabilities.Add, []corev1.Capability{"NET_ADMIN", "NET_RAW"}) ||
			!slices.Contains(isc.Capabilities.Drop, "ALL") {
			t.Errorf("ringside-init capabilities %+v, want drop ALL, add NET_ADMIN NET_RAW", isc)
		}
		if isc.AllowPrivilegeEscalation == nil || *isc.AllowPrivilegeEscalation {
			t.Error("ringside-init must set allowPrivilegeEscalation: false")
		}
	}
}

// checkSecurity checks what every Ringside container shares: read-only root, no escalation,
// all capabilities dropped, the wanted seccomp profile.
func checkSecurity(t *testing.T, name string, sc *corev1.SecurityContext, w want) {
	t.Helper()
	if sc == nil {
		t.Fatalf("%s: no securityContext", name)
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Errorf("%s: readOnlyRootFilesystem must be true", name)
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("%s: allowPrivilegeEscalation must be false", name)
	}
	if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
		t.Errorf("%s: capabilities must drop ALL", name)
	}
	sp := sc.SeccompProfile
	if sp == nil || sp.Type != w.seccomp {
		t.Fatalf("%s: seccompProfile %+v, want %s", name, sp, w.seccomp)
	}
	if w.seccomp == corev1.SeccompProfileTypeLocalhost && (sp.LocalhostProfile == nil || *sp.LocalhostProfile != w.localhost) {
		t.Errorf("%s: localhostProfile %v, want %s", name, sp.LocalhostProfile, w.localhost)
	}
}
