package charttests

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ringsideCheck writes the rendered ConfigMap's ringside.yaml to a file and runs
// `ringside check -c` on it, returning the file, the output and the exit code.
func ringsideCheck(t *testing.T, stream string) (string, string, int) {
	t.Helper()
	m := decodeStrict(t, stream)
	if len(m.configMaps) != 1 {
		t.Fatalf("want 1 ConfigMap, got %d", len(m.configMaps))
	}
	cfg, ok := m.configMaps[0].Data["ringside.yaml"]
	if !ok {
		t.Fatalf("ConfigMap has no ringside.yaml: keys %v", m.configMaps[0].Data)
	}
	file := filepath.Join(t.TempDir(), "ringside.yaml")
	if err := os.WriteFile(file, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(ringsideBin(t), "check", "-c", file)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return file, out.String(), code
}

// TestConfigPassesCheck: every values set renders a config that `ringside check` accepts.
func TestConfigPassesCheck(t *testing.T) {
	for name, file := range ciCases(t) {
		t.Run(name, func(t *testing.T) {
			stream := renderCase(t, file)
			if strings.Contains(stream, "/var/run/ringside/tls/") {
				// Certificate files are read and checked: give the config real ones.
				dir := t.TempDir()
				writeTLSFiles(t, dir)
				stream = strings.ReplaceAll(stream, "/var/run/ringside/tls/", dir+"/")
			}
			_, out, code := ringsideCheck(t, stream)
			if code != 0 {
				t.Errorf("ringside check exit %d:\n%s", code, out)
			}
		})
	}
}

// TestBrokenConfigFailsCheck proves the check above can fail: a values set with an unknown
// cluster and a duration without a unit must be rejected with file:line:col positions.
func TestBrokenConfigFailsCheck(t *testing.T) {
	file, out, code := ringsideCheck(t, render(t, "broken/bad-config-values.yaml"))
	if code != 1 {
		t.Fatalf("ringside check exit %d, want 1:\n%s", code, out)
	}
	for _, reason := range []string{"nope", "unit"} {
		re := regexp.MustCompile(regexp.QuoteMeta(file) + `:\d+:\d+: .*` + reason)
		if !re.MatchString(out) {
			t.Errorf("no `%s:LINE:COL: ...%s...` line in:\n%s", file, reason, out)
		}
	}
}

// invalidValues are values (and a release name) that would make a broken pod or an object the
// API server refuses, with what the chart says about them. release "" means `release`.
var invalidValues = []struct{ release, set, want string }{
	{"", "runtime=uring", "value must be one of 'auto', 'io-uring', 'epoll', 'split'"},
	// Split mode runs one worker of each runtime at least; the share is split's alone.
	{"", "runtime=split", "runtime: split needs workers 0"},
	{"", "ioUringWorkers=1", "ioUringWorkers is only valid with runtime: split"},
	{"", "terminationGracePeriodSeconds=20", "must exceed drainTimeoutSeconds + preStopSleepSeconds (20)"},
	{"", "seccompProfile.type=Localhost", "needs seccompProfile.localhostProfile"},
	{"", "nativeSidecar=maybe", "nativeSidecar"},
	{"", "runAsUser=0", "runAsUser"},
	// Object names: the server refuses a ConfigMap "Shop_Proxy-config" and a Service
	// "1shop-ringside-example" (a Service name must start with a letter).
	{"", "fullnameOverride=Shop_Proxy", "'/fullnameOverride': 'Shop_Proxy' does not match pattern"},
	{"1shop", "example.enabled=true", `the example Service would be named "1shop-ringside-example"`},
	// TLS: a mode that does not exist, a Secret source without the Secret, SPIRE without
	// mutual TLS, and an allow list nobody could match (no client certificates).
	{"", "tls.mode=on", "value must be one of 'off', 'strict', 'permissive'"},
	{"", "tls.mode=strict", "tls.source secret needs tls.secret.name"},
	{"", "tls.mode=strict,tls.source=spire,tls.mutual=false", "tls.mutual false cannot be honoured"},
	{"", "tls.allow[0]=spiffe://td/x", "tls.allow needs tls.mode strict or permissive with tls.mutual"},
}

// invalidArgs is the helm command line of an invalidValues case after the verb.
func invalidArgs(rel, set string) []string {
	if rel == "" {
		rel = release
	}
	return []string{rel, chartDir, "--set", set}
}

// TestInvalidValuesRejected: values that would make a broken pod fail at render time
// (TestKubeInvalidValues: and never reach an API server).
func TestInvalidValuesRejected(t *testing.T) {
	for _, c := range invalidValues {
		t.Run(c.release+" "+c.set, func(t *testing.T) {
			_, err := helm(t, append([]string{"template"}, invalidArgs(c.release, c.set)...)...)
			if err == nil {
				t.Fatalf("--set %s rendered; want an error mentioning %q", c.set, c.want)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("--set %s: error does not mention %q:\n%v", c.set, c.want, err)
			}
		})
	}
}

// TestParentChart renders testdata/mychart, a user's chart whose own Deployment includes the
// named templates with .Subcharts.ringside, as docs/kubernetes.md describes.
func TestParentChart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "mychart")
	if err := os.CopyFS(dir, os.DirFS("testdata/mychart")); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(filepath.Join(dir, "charts", "ringside"), os.DirFS(chartDir)); err != nil {
		t.Fatal(err)
	}
	out, err := helm(t, "template", "shop", dir, "--namespace", "default")
	if err != nil {
		t.Fatal(err)
	}
	m := decodeStrict(t, out)
	if len(m.deployments) != 1 || m.deployments[0].Name != "shop-api" || len(m.services) != 0 {
		t.Fatalf("want only the user's Deployment shop-api, got %d Deployments, %d Services", len(m.deployments), len(m.services))
	}
	w := want{native: true, runtime: "epoll", seccomp: "RuntimeDefault", annotations: true}
	pod := m.deployments[0].Spec.Template
	checkPod(t, pod, m.configMaps[0].Name, 9901, 4143, w)
	if pod.Spec.Containers[0].Name != "api" {
		t.Errorf("the user's container should come first, got %s", pod.Spec.Containers[0].Name)
	}
	if !strings.Contains(m.configMaps[0].Data["ringside.yaml"], "127.0.0.1:9000") {
		t.Error("the parent's ringside values did not reach the ConfigMap")
	}
	if _, out, code := ringsideCheck(t, out); code != 0 {
		t.Errorf("ringside check exit %d:\n%s", code, out)
	}
}

// TestSeccompProfile: the shipped Localhost profile is an OCI seccomp profile (strictly
// decoded into the runtime-spec type) that denies by default and allows io_uring.
func TestSeccompProfile(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(chartDir, "seccomp", "ringside-io-uring.json"))
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var p specs.LinuxSeccomp
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("not an OCI seccomp profile: %v", err)
	}
	if p.DefaultAction != specs.ActErrno || p.DefaultErrnoRet == nil || *p.DefaultErrnoRet != 1 {
		t.Errorf("default action %s errno %v, want SCMP_ACT_ERRNO with EPERM", p.DefaultAction, p.DefaultErrnoRet)
	}
	for _, a := range []specs.Arch{specs.ArchX86_64, specs.ArchAARCH64} {
		if !slices.Contains(p.Architectures, a) {
			t.Errorf("architectures lack %s", a)
		}
	}
	allowed := map[string]int{}
	for _, s := range p.Syscalls {
		if s.Action == specs.ActAllow && len(s.Args) == 0 {
			for _, n := range s.Names {
				allowed[n]++
			}
		}
	}
	// io_uring, plus what Ringside and any Rust/Go process needs on either runtime.
	for _, n := range []string{
		"io_uring_setup", "io_uring_enter", "io_uring_register",
		"epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait", "accept4", "connect", "bind",
		"listen", "read", "write", "recvfrom", "sendto", "close", "futex", "mmap", "munmap",
		"clone", "inotify_init1", "inotify_add_watch", "setrlimit", "prlimit64", "rt_sigaction",
		"setitimer", "exit_group",
	} {
		if n == "clone" {
			continue // allowed with an argument filter (no namespace flags), as in the default
		}
		if allowed[n] == 0 {
			t.Errorf("%s is not allowed", n)
		}
	}
	for n, c := range allowed {
		if c > 1 {
			t.Errorf("%s is listed %d times", n, c)
		}
	}
	// Nothing that needs a capability the container drops.
	for _, n := range []string{"mount", "unshare", "setns", "bpf", "kexec_load", "init_module", "reboot"} {
		if allowed[n] != 0 {
			t.Errorf("%s must not be allowed", n)
		}
	}
}
